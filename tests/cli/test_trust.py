"""`veil trust`: the steps per system as data, what --apply may and may not do, and the NSS
steps carried out for real with certutil (libnss3-tools) when it is installed."""

import datetime
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from veil.cli import ca_files, trust

VEIL = [sys.executable, "-m", "veil.cli"]


def situation(system="linux", **kwargs) -> trust.Situation:
    return trust.Situation(system, Path("/home/ann/.mitmproxy/mitmproxy-ca-cert.pem"), Path("/home/ann"), **kwargs)


def commands(step: trust.Step) -> list[tuple[str, ...]]:
    return [action.argv for action in step.actions if isinstance(action, trust.Run)]


def test_linux_adds_the_ca_to_the_users_nss_database_creating_it_when_missing():
    first = trust.steps(situation())[0]
    assert first.automatic
    assert commands(first) == [
        ("certutil", "-d", "sql:/home/ann/.pki/nssdb", "-N", "--empty-password"),
        ("certutil", "-d", "sql:/home/ann/.pki/nssdb", "-A", "-t", "C,,", "-n", trust.NICKNAME,
         "-i", "/home/ann/.mitmproxy/mitmproxy-ca-cert.pem"),
    ]  # fmt: skip
    assert first.actions[0] == trust.MakeDirectory(Path("/home/ann/.pki/nssdb"))
    existing = trust.steps(situation(nssdb_exists=True))[0]
    assert [argv[3] for argv in commands(existing)] == ["-A"]
    assert "-D" in existing.undo[0]


def test_linux_firefox_profiles_each_get_their_own_step():
    profiles = (Path("/home/ann/.mozilla/firefox/abc.default-release"), Path("/home/ann/.mozilla/firefox/x.work"))
    found = [s for s in trust.steps(situation(firefox_profiles=profiles)) if s.title.startswith("Firefox")]
    assert [commands(s)[0][2] for s in found] == [f"sql:{p}" for p in profiles]
    assert all(s.automatic for s in found)
    (none,) = [s for s in trust.steps(situation()) if s.title.startswith("Firefox")]
    assert not none.automatic and 'certutil -d "sql:$P"' in none.show("linux")[0]


def test_machine_wide_stores_are_never_automatic():
    for system in trust.SYSTEMS:
        for step in trust.steps(situation(system)):
            shown = " ".join(step.show(system))
            if "sudo" in shown or "System.keychain" in shown or "-addstore Root" in shown and "-user" not in shown:
                assert not step.automatic, step.title


def test_macos_uses_the_login_keychain_and_windows_the_users_store():
    (mac,) = [s for s in trust.steps(situation("macos")) if s.automatic and commands(s)]
    assert commands(mac) == [("security", "add-trusted-cert", "-r", "trustRoot", "-p", "ssl", "-k",
                              "/home/ann/Library/Keychains/login.keychain-db", "/home/ann/.mitmproxy/mitmproxy-ca-cert.pem")]  # fmt: skip
    (windows,) = [s for s in trust.steps(situation("windows")) if s.automatic and commands(s)]
    assert commands(windows) == [("certutil", "-user", "-addstore", "Root", "/home/ann/.mitmproxy/mitmproxy-ca-cert.cer")]


def test_environment_variables_that_replace_roots_name_the_bundle_and_node_the_ca_alone():
    with_roots = trust.steps(situation(system_bundle=Path("/etc/ssl/certs/ca-certificates.crt")))
    shown = "\n".join(line for step in with_roots for line in step.show("linux"))
    assert "cat /etc/ssl/certs/ca-certificates.crt /home/ann/.mitmproxy/mitmproxy-ca-cert.pem > /home/ann/.mitmproxy/veil-ca-bundle.pem" in shown
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert f"export {name}=/home/ann/.mitmproxy/veil-ca-bundle.pem" in shown
    assert "export NODE_EXTRA_CA_CERTS=/home/ann/.mitmproxy/mitmproxy-ca-cert.pem" in shown  # Node adds, not replaces
    without_roots = "\n".join(line for step in trust.steps(situation()) for line in step.show("linux"))
    assert "export SSL_CERT_FILE=/home/ann/.mitmproxy/veil-ca-bundle.pem" in without_roots
    windows = "\n".join(line for step in trust.steps(situation("windows")) for line in step.show("windows"))
    assert "setx SSL_CERT_FILE /home/ann/.mitmproxy/veil-ca-bundle.pem" in windows


def test_perform_runs_the_commands_in_order_and_reports_failures(tmp_path):
    ran = []

    def runner(argv):
        ran.append(tuple(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    nssdb = tmp_path / ".pki" / "nssdb"
    step = trust.steps(trust.Situation("linux", tmp_path / "ca.pem", tmp_path))[0]
    trust.perform(step, runner)
    assert nssdb.is_dir() and oct(nssdb.stat().st_mode & 0o777) == "0o700"
    assert ran == commands(step)

    def failing(argv):
        return subprocess.CompletedProcess(argv, 255, "", "certutil: function failed: SEC_ERROR_BAD_DATABASE")

    with pytest.raises(trust.StepFailed, match="SEC_ERROR_BAD_DATABASE"):
        trust.perform(step, failing)

    def missing(argv):
        raise FileNotFoundError(argv[0])

    with pytest.raises(trust.StepFailed, match="libnss3-tools"):
        trust.perform(step, missing)
    with pytest.raises(ValueError):
        trust.perform(trust.steps(situation())[-1])  # the environment: never performed


def test_perform_writes_the_bundle(tmp_path):
    system, ca = tmp_path / "system.pem", tmp_path / "conf" / "mitmproxy-ca-cert.pem"
    ca.parent.mkdir()
    system.write_text("SYSTEM ROOTS")
    ca.write_text("VEIL CA\n")
    (bundle_step,) = [s for s in trust.steps(trust.Situation("linux", ca, tmp_path, system_bundle=system)) if "bundle" in s.title]
    trust.perform(bundle_step)
    assert (ca.parent / trust.BUNDLE_NAME).read_text() == "SYSTEM ROOTS\nVEIL CA\n"


# --------------------------------------------------------------------------------------------
# For real: certutil and the `veil trust` command
# --------------------------------------------------------------------------------------------


def make_ca(folder: Path) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mitmproxy")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256())
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mitmproxy-ca-cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def veil_trust(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home))
    return subprocess.run([*VEIL, "trust", *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_printing_changes_nothing(tmp_path):
    ca = make_ca(tmp_path / "conf")
    done = veil_trust(tmp_path, "--confdir", str(ca.parent))
    assert done.returncode == 0, done.stderr
    assert "Nothing has been changed" in done.stdout and "certutil -d sql:" in done.stdout
    assert not (tmp_path / ".pki").exists() and not (ca.parent / trust.BUNDLE_NAME).exists()


def test_apply_without_confirmation_refuses(tmp_path):
    ca = make_ca(tmp_path / "conf")
    done = veil_trust(tmp_path, "--confdir", str(ca.parent), "--apply")
    assert done.returncode == 2 and "--yes" in done.stderr
    assert "Veil will now do exactly this" in done.stdout  # said what it would do
    assert not (tmp_path / ".pki").exists()
    other = veil_trust(tmp_path, "--confdir", str(ca.parent), "--apply", "--yes", "--os", "windows" if sys.platform != "win32" else "linux")
    assert other.returncode == 2 and "this machine only" in other.stderr


@pytest.mark.skipif(not shutil.which("certutil"), reason="certutil is not installed (libnss3-tools)")
def test_apply_trusts_the_ca_in_a_real_nss_database(tmp_path):
    ca = make_ca(tmp_path / "conf")
    done = veil_trust(tmp_path, "--confdir", str(ca.parent), "--apply", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    listing = subprocess.run(["certutil", "-d", f"sql:{tmp_path / '.pki' / 'nssdb'}", "-L"], capture_output=True, text=True, check=True)
    (line,) = [line for line in listing.stdout.splitlines() if line.startswith(trust.NICKNAME)]
    assert line.split()[-1] == "C,,"
    env = veil_trust(tmp_path, "--confdir", str(ca.parent), "--env")
    bundle = ca.parent / trust.BUNDLE_NAME
    if bundle.exists():  # the machine has a system bundle to extend
        assert f"export SSL_CERT_FILE={bundle}" in env.stdout and bundle.read_text().endswith(ca.read_text())
    assert f"export NODE_EXTRA_CA_CERTS={ca}" in env.stdout
    again = veil_trust(tmp_path, "--confdir", str(ca.parent), "--apply", "--yes")  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr


# --------------------------------------------------------------------------------------------
# The advice printed by `veil trust --env` and `veil run`: one bundle, made on demand
# --------------------------------------------------------------------------------------------


def exported(lines: str) -> dict[str, Path]:
    return {name: Path(value) for name, value in re.findall(r"export (\w+)=(\S+)", lines)}


def certificates_in(bundle: Path) -> int:
    return ssl.create_default_context(cafile=str(bundle)).cert_store_stats()["x509_ca"]


def assert_bundle_of_system_roots_and_ca(variables: dict[str, Path], ca: Path):
    bundle = ca.with_name(trust.BUNDLE_NAME)
    assert {name: variables[name] for name in trust.REPLACING_VARIABLES} == dict.fromkeys(trust.REPLACING_VARIABLES, bundle)
    assert variables["NODE_EXTRA_CA_CERTS"] == ca
    roots = ca_files.system_roots()
    if roots is None:
        pytest.skip("this machine has no system CA bundle to extend")
    assert bundle.read_bytes() == trust.concatenated((roots, ca))
    assert certificates_in(bundle) == certificates_in(roots) + 1 > 2  # the roots, still trusted, plus Veil's CA


def test_trust_env_names_a_bundle_it_makes_of_the_system_roots_plus_the_ca(tmp_path):
    ca = make_ca(tmp_path / "conf")
    done = veil_trust(tmp_path, "--confdir", str(ca.parent), "--env")
    assert done.returncode == 0, done.stderr
    assert_bundle_of_system_roots_and_ca(exported(done.stdout), ca)
    newer = make_ca(tmp_path / "conf")  # a new CA: the bundle follows it
    assert veil_trust(tmp_path, "--confdir", str(ca.parent), "--env").returncode == 0
    assert ca.with_name(trust.BUNDLE_NAME).read_bytes().endswith(newer.read_bytes())


def test_trust_env_without_a_ca_says_how_to_get_one(tmp_path):
    done = veil_trust(tmp_path, "--confdir", str(tmp_path / "conf"), "--env")
    assert done.returncode == 2 and "veil run" in done.stderr and not done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_run_banner_gives_the_same_advice_before_the_proxy_made_its_ca(tmp_path):
    confdir = tmp_path / "fresh-confdir"
    command = [*VEIL, "run", "--listen-port", str(free_port()), "--confdir", str(confdir), "--audit-log", str(tmp_path / "a.jsonl")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    banner = ""
    try:
        for line in process.stderr:
            banner += line
            if "proxy auto-config URL" in line or "veil:" in line:
                break
    finally:
        process.terminate()
        process.wait(60)
    ca = confdir / "mitmproxy-ca-cert.pem"
    variables = exported(banner)
    assert variables.keys() == {"HTTPS_PROXY", *trust.REPLACING_VARIABLES, *trust.ADDING_VARIABLES}
    assert_bundle_of_system_roots_and_ca(variables, ca)
    printed = [line.strip() for line in banner.splitlines() if line.strip().startswith("export") and "HTTPS_PROXY" not in line]
    assert veil_trust(tmp_path, "--confdir", str(confdir), "--env").stdout.splitlines() == printed
