"""A real mitmdump with the Veil addon, a local recording upstream, and the CA the
clients must trust. Clients use the services' real URLs; a test addon loaded after
Veil reroutes what Veil lets through to the recording upstream."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.upstream import RecordingUpstream

ROOT = Path(__file__).resolve().parents[2]
MITMDUMP = Path(sys.executable).with_name("mitmdump")
DEFAULT_POLICY = ROOT / "config" / "policy.yaml"


@dataclass
class Proxy:
    url: str
    port: int
    ca_file: Path
    audit_log: Path
    process: subprocess.Popen
    log_file: Path

    def audit_records(self) -> list[dict]:
        """The records of what Veil did with each request (the image events), without the
        `upstream` records that follow a forwarded request to its outcome (outcome_records)."""
        return [record for record in self.all_records() if record.get("event") != "upstream"]

    def outcome_records(self) -> list[dict]:
        return [record for record in self.all_records() if record.get("event") == "upstream"]

    def all_records(self) -> list[dict]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mitmdump(
    tmp: Path,
    upstream_port: int,
    policy: Path = DEFAULT_POLICY,
    *extra: str,
    listen_host: str = "127.0.0.1",
    confdir: Path | None = None,
) -> Proxy:
    """`confdir`: a CA several instances share (tests/e2e/test_scaleout_haproxy.py); by
    default each instance creates its own in tmp."""
    audit_log = tmp / "audit.jsonl"
    veil = ("-s", str(ROOT / "addons" / "veil_addon.py"), "--set", f"veil_policy={policy}", "--set", f"veil_audit_log={audit_log}")
    return _start(tmp, upstream_port, veil, extra, listen_host, confdir or tmp / "mitmproxy", audit_log)


def start_plain_mitmdump(tmp: Path, upstream_port: int) -> Proxy:
    """The baseline of the benchmarks: the same mitmdump and rerouting, without Veil."""
    tmp.mkdir(parents=True, exist_ok=True)
    return _start(tmp, upstream_port, (), (), "127.0.0.1", tmp / "mitmproxy", tmp / "no-audit.jsonl")


def _start(tmp: Path, upstream_port: int, veil: tuple, extra: tuple, listen_host: str, confdir: Path, audit_log: Path) -> Proxy:
    port = free_port()
    log_file = tmp / "mitmdump.log"
    command = [
        str(MITMDUMP),
        "--listen-host", listen_host, "--listen-port", str(port),
        "--set", f"confdir={confdir}",
        "--set", "connection_strategy=lazy",
        *veil,
        "-s", str(ROOT / "tests" / "e2e" / "reroute_addon.py"),
        "--set", f"reroute_port={upstream_port}",
        *extra,
    ]  # fmt: skip
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = Proxy(f"http://127.0.0.1:{port}", port, confdir / "mitmproxy-ca-cert.pem", audit_log, process, log_file)
    _wait_until_listening(proxy)
    return proxy


def _wait_until_listening(proxy: Proxy, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"mitmdump exited with {proxy.process.returncode}:\n{proxy.output()}")
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=0.2).close()
            if proxy.ca_file.exists():
                return
        except OSError:
            pass
        time.sleep(0.1)
    stop(proxy)
    raise RuntimeError(f"mitmdump did not start listening within {timeout} s:\n{proxy.output()}")


def stop(proxy: Proxy):
    stop_process_group(proxy.process)


def stop_process_group(process: subprocess.Popen):
    """SIGTERM to a process started in a session of its own and to its children, SIGKILL
    after 10 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def upstream():
    with RecordingUpstream() as server:
        yield server


@pytest.fixture(scope="session")
def proxy(upstream, tmp_path_factory):
    running = start_mitmdump(tmp_path_factory.mktemp("veil-proxy"), upstream.port)
    yield running
    stop(running)


@pytest.fixture
def proxy_env(proxy, monkeypatch):
    """Environment for a client subprocess (curl) or an SDK that reads the environment."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    ca = str(proxy.ca_file)
    env = dict(os.environ, HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url, SSL_CERT_FILE=ca, CURL_CA_BUNDLE=ca)
    return env


def require_curl():
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")


@pytest.fixture(scope="session")
def direct_tls_server(tmp_path_factory):
    """An HTTPS server with its own self-signed certificate for 127.0.0.1. A client that
    trusts only that certificate can talk to it through Veil only if Veil did not
    decrypt the connection."""
    import datetime
    import ipaddress
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "direct-test-server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("direct-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"direct")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", cert_file
    server.shutdown()
