"""Identity and exposure through a real mitmdump: proxy authentication from an htpasswd
file, the audit `user`, rules for a group, 407 for missing or wrong credentials, refusing to
listen beyond loopback without authentication, and the CA key's permissions."""

import base64
import hashlib
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import bcrypt
import pytest

from e2e.conftest import MITMDUMP, ROOT, free_port, require_curl, start_mitmdump, stop
from e2e.photos import face_photo_with_gps

VEIL = Path(sys.executable).with_name("veil")

POLICY = textwrap.dedent(
    """
    version: 1
    groups:
      research: [alice]
    services:
      openai-api:
        hosts: [api.openai.com]
        rules:
          - name: research-exempt
            groups: [research]
            action: allow
          - name: everyone
    """
)
PASSWORDS = {"alice": "alice-secret", "carol": "carol-secret"}


def htpasswd_file(folder: Path) -> Path:
    """alice with a bcrypt hash (what `htpasswd -B` writes), carol with Apache's {SHA}."""
    alice = bcrypt.hashpw(PASSWORDS["alice"].encode(), bcrypt.gensalt(rounds=4)).decode()
    carol = "{SHA}" + base64.b64encode(hashlib.sha1(PASSWORDS["carol"].encode()).digest()).decode()
    path = folder / "htpasswd"
    path.write_text(f"alice:{alice}\ncarol:{carol}\n")
    return path


@pytest.fixture(scope="module")
def auth_proxy(upstream, tmp_path_factory):
    folder = tmp_path_factory.mktemp("identity-proxy")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    running = start_mitmdump(folder, upstream.port, policy, "--set", f"proxyauth=@{htpasswd_file(folder)}")
    yield running
    stop(running)


def post(proxy, path: str, body: bytes, credentials: str | None) -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "-i", "--suppress-connect-headers", "--max-time", "60", "--proxy", proxy.url,
               "--cacert", str(proxy.ca_file), "--data-binary", "@-", f"https://api.openai.com{path}"]  # fmt: skip
    if credentials:
        command[1:1] = ["--proxy-user", credentials]
    return subprocess.run(command, input=body, capture_output=True, timeout=90)


def test_an_authenticated_upload_is_cleaned_and_its_record_names_the_user(auth_proxy, upstream):
    photo = face_photo_with_gps()
    done = post(auth_proxy, "/v1/files", photo, "carol:carol-secret")
    assert done.returncode == 0, done.stderr
    received = upstream.last("/v1/files")
    assert received.body != photo and b"Proxy-Authorization" not in repr(received.headers).encode()
    record = auth_proxy.audit_records()[-1]
    assert record["event"] == "sanitised" and record["user"] == "carol" and record["rule"] == "everyone"
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1
    assert "carol-secret" not in auth_proxy.audit_log.read_text()


def test_a_user_of_an_exempt_group_passes_untouched_and_is_recorded(auth_proxy, upstream):
    photo = face_photo_with_gps()
    done = post(auth_proxy, "/v1/exempt", photo, "alice:alice-secret")
    assert done.returncode == 0, done.stderr
    assert upstream.last("/v1/exempt").body == photo
    record = auth_proxy.audit_records()[-1]
    assert record["event"] == "passed" and record["user"] == "alice" and record["rule"] == "research-exempt"


@pytest.mark.parametrize("credentials", [None, "carol:wrong", "mallory:alice-secret"])
def test_missing_or_wrong_credentials_get_407_and_nothing_is_forwarded(auth_proxy, upstream, credentials):
    records_before = len(auth_proxy.audit_records())
    upstream.clear()
    done = post(auth_proxy, "/v1/refused", face_photo_with_gps(), credentials)
    assert done.returncode != 0
    assert b"407" in done.stderr + done.stdout
    assert upstream.received == []
    assert len(auth_proxy.audit_records()) == records_before


def test_the_pac_file_is_served_without_proxy_credentials(auth_proxy):
    require_curl()
    done = subprocess.run(["curl", "-sS", "-i", "--noproxy", "*", f"{auth_proxy.url}/proxy.pac"],
                          capture_output=True, timeout=30)  # fmt: skip
    assert done.stdout.startswith(b"HTTP/1.1 200") and b"FindProxyForURL" in done.stdout


def test_the_ca_key_is_readable_by_its_owner_only(auth_proxy):
    confdir = auth_proxy.ca_file.parent
    for name in ("mitmproxy-ca.pem", "mitmproxy-ca.p12"):
        assert stat.S_IMODE((confdir / name).stat().st_mode) == 0o600, name


# ---- exposure ------------------------------------------------------------------------------


def veil_run(tmp: Path, *args: str) -> list[str]:
    return [str(VEIL), "run", "--listen-host", "0.0.0.0", "--listen-port", str(free_port()),
            "--confdir", str(tmp / "mitmproxy"), "--audit-log", str(tmp / "audit.jsonl"), *args,
            "--", "--set", "veil_workers=1"]  # fmt: skip


def test_listening_beyond_loopback_without_authentication_is_refused(tmp_path):
    done = subprocess.run(veil_run(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "veil: Veil will not listen on 0.0.0.0 without proxy authentication: that would be an open proxy "
        "decrypting HTTPS traffic for anyone on the network who can reach it."
    )
    assert "listening" not in done.stderr + done.stdout and not (tmp_path / "mitmproxy").exists()


def test_mitmdump_listening_on_every_interface_is_refused_too(tmp_path):
    command = [str(MITMDUMP), "--listen-host", "", "--listen-port", str(free_port()),
               "--set", f"confdir={tmp_path / 'mitmproxy'}", "-s", str(ROOT / "addons" / "veil_addon.py"),
               "--set", f"veil_audit_log={tmp_path / 'audit.jsonl'}", "--set", "veil_workers=1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Error logged during startup, exiting" in done.stderr
    assert "Veil will not listen on every interface without proxy authentication" in done.stdout


def test_an_explicit_option_allows_an_open_proxy(upstream, tmp_path):
    running = start_mitmdump(tmp_path, upstream.port, ROOT / "config" / "policy.yaml", "--set", "veil_workers=1",
                             "--set", "veil_allow_open_proxy=true", listen_host="0.0.0.0")  # fmt: skip
    stop(running)  # it started: that is the test; stop before anyone else could use it


def test_veil_run_allow_open_proxy_starts(tmp_path):
    with open(tmp_path / "out.log", "wb") as out:
        process = subprocess.Popen(veil_run(tmp_path, "--allow-open-proxy"), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        output = ""
        for _ in range(600):
            output = (tmp_path / "out.log").read_text(errors="replace")
            if "listening at" in output or process.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert process.poll() is None and "listening at" in output, output
    finally:
        import os
        import signal

        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)


def test_a_loose_ca_key_is_restricted_at_start_with_a_warning(upstream, tmp_path):
    first = start_mitmdump(tmp_path, upstream.port, ROOT / "config" / "policy.yaml", "--set", "veil_workers=1")
    stop(first)
    key = tmp_path / "mitmproxy" / "mitmproxy-ca.pem"
    key.chmod(0o644)
    second = start_mitmdump(tmp_path, upstream.port, ROOT / "config" / "policy.yaml", "--set", "veil_workers=1")
    try:
        for _ in range(100):
            if "readable by others" in second.output():
                break
            subprocess.run(["sleep", "0.1"])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "was readable by others (mode 0644); set to 0600" in second.output()
    finally:
        stop(second)
