"""Scale-out: two real Veil instances behind a real HAProxy, as deploy/ describes.

Both instances share one CA (one confdir, as mitmproxy writes it) and one policy, and each
writes its own audit log. HAProxy runs deploy/haproxy/haproxy.cfg, with only the addresses
changed (tests/e2e/haproxy.py), and waits for both instances' /readyz before the uploads.
Every upload is a new client and a new TLS connection that trusts only the shared CA
certificate, so an instance with a CA of its own would fail the uploads it got."""

import hashlib
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from e2e.conftest import DEFAULT_POLICY, free_port, start_mitmdump, stop
from e2e.haproxy import Backend, haproxy_binary, start_haproxy
from e2e.photos import assert_clean_and_masked, face_photo_with_gps
from e2e.upstream import RecordingUpstream

VEIL = Path(sys.executable).with_name("veil")
UPLOADS = 12
FILES_URL = "https://api.openai.com/v1/files"


def http_client_module():
    """httpx as the openai SDK installs it (httpx2 in this venv, httpx elsewhere)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


def upload(front_url: str, ca_file: Path, photo: bytes) -> int:
    """One upload on a client of its own: a new TCP connection, so HAProxy chooses again."""
    httpx = http_client_module()
    context = ssl.create_default_context(cafile=str(ca_file))
    with httpx.Client(proxy=front_url, verify=context, timeout=60, trust_env=False) as client:
        response = client.post(FILES_URL, content=photo, headers={"Content-Type": "application/octet-stream",
                                                                  "Authorization": "Bearer sk-test"})  # fmt: skip
    return response.status_code


@pytest.fixture
def shared_ca(tmp_path) -> Path:
    """One CA for every instance, made before any starts (two instances creating it at once
    would each write their own): the folder a Kubernetes Secret or a copy would provide."""
    from mitmproxy.certs import CertStore

    confdir = tmp_path / "shared-confdir"
    CertStore.create_store(confdir, "mitmproxy", 2048)
    return confdir


def test_uploads_through_haproxy_are_spread_over_instances_and_all_cleaned(tmp_path, shared_ca):
    binary = haproxy_binary()
    if binary is None:
        pytest.skip("haproxy is not installed (scripts/install-system-deps installs Debian's package)")
    photo = face_photo_with_gps()
    ca_key_before = (shared_ca / "mitmproxy-ca.pem").read_bytes()
    instances, haproxy = [], None
    with RecordingUpstream() as upstream:
        try:
            for name in ("veil-a", "veil-b"):
                metrics_port = free_port()
                (tmp_path / name).mkdir()
                # One cleaning worker each: two instances on two cores, as one instance has by default.
                proxy = start_mitmdump(
                    tmp_path / name, upstream.port, DEFAULT_POLICY,
                    "--set", f"veil_metrics_port={metrics_port}", "--set", "veil_workers=1", confdir=shared_ca,
                )  # fmt: skip
                instances.append((name, proxy, metrics_port))
            backends = [Backend(name, proxy.port, metrics_port) for name, proxy, metrics_port in instances]
            haproxy = start_haproxy(binary, tmp_path / "haproxy", free_port(), backends)
            haproxy.wait_until_up([b.name for b in backends])
            # Up by an HTTP answer from /readyz (L7OK), not merely an open port (L4OK).
            assert {row["check_status"] for row in haproxy.servers().values()} == {"L7OK"}

            ca_file = shared_ca / "mitmproxy-ca-cert.pem"
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(lambda _: upload(haproxy.url, ca_file, photo), range(UPLOADS)))
            sessions = {name: int(row["stot"]) for name, row in haproxy.servers().items()}
        finally:
            if haproxy:
                haproxy.stop()
            for _, proxy, _ in instances:
                stop(proxy)

        assert statuses == [200] * UPLOADS, f"HAProxy said:\n{haproxy.output()[-2000:]}"
        received = [r for r in upstream.received if r.path == "/v1/files"]
    assert len(received) == UPLOADS
    for request in received:
        assert request.body != photo
        assert_clean_and_masked(request.body)

    # HAProxy sent connections to both, and each instance recorded the uploads it cleaned.
    assert all(count >= 1 for count in sessions.values()) and sum(sessions.values()) >= UPLOADS, sessions
    original = hashlib.sha256(photo).hexdigest()
    cleaned = {hashlib.sha256(r.body).hexdigest() for r in received}
    per_instance = {}
    for name, proxy, _ in instances:
        records = [r for r in proxy.audit_records() if r["url"] == FILES_URL]
        assert all(r["event"] == "sanitised" and r["sha256_before"] == original for r in records), records
        assert {r["sha256_after"] for r in records} <= cleaned
        per_instance[name] = len(records)
        verified = subprocess.run([str(VEIL), "audit", "verify", str(proxy.audit_log)], capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0 and "chain intact" in verified.stdout, verified.stdout + verified.stderr
    assert all(count >= 1 for count in per_instance.values()), per_instance
    assert sum(per_instance.values()) == UPLOADS, per_instance
    assert len({proxy.audit_log for _, proxy, _ in instances}) == len(instances)
    # Sharing a CA means using it as it is: neither instance made a new one.
    assert (shared_ca / "mitmproxy-ca.pem").read_bytes() == ca_key_before
