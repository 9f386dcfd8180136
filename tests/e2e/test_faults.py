"""Overload and faults on a real proxy: each fault is injected and its defined behaviour
checked. Protected uploads fail closed with a readable reason, nothing unsanitised is
forwarded, the proxy keeps serving, and the operator sees it in the log and the metrics.

- too many images queued      → 503 + Retry-After; chat and unprotected traffic unaffected
- an image overruns its limit → that image blocked, its worker killed, the pool replaced
- the service resets          → the client gets 502; what reached the service was clean
- the service stalls          → other uploads go on around it
- SIGTERM                     → readiness fails, new uploads get 503, uploads in flight finish
- the audit log stops taking writes → 503, readiness fails; all records written on recovery
- kill -9 under load          → the audit chain verifies, and a restart continues it
"""

import base64
import io
import json
import os
import ssl
import resource
import signal
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from e2e.conftest import DEFAULT_POLICY, free_port, start_mitmdump, stop
from e2e.photos import assert_clean_and_masked, face_photo_with_gps
from veil.audit import files
from veil.audit.verify import verify

CHAT = "https://api.openai.com/v1/chat/completions"
CLAUDE = "https://api.anthropic.com/v1/messages"


def large_face_photo() -> bytes:
    """A 12 MP phone-sized photo: cleaning it takes long enough (~1 s) for work to pile up."""
    with Image.open(io.BytesIO(face_photo_with_gps())) as small:
        exif = small.info["exif"]
        large = small.resize((4000, 3000))
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=85, exif=exif)
    return buffer.getvalue()


def chat_body(photo: bytes | None) -> bytes:
    content = [{"type": "text", "text": "what is this?"}]
    if photo is not None:
        url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
        content.append({"type": "image_url", "image_url": {"url": url}})
    return json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": content}]}).encode()


def claude_body(photo: bytes) -> bytes:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(photo).decode()}}
    return json.dumps({"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": [image]}]}).encode()


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def post(proxy, url: str, body: bytes, **headers: str) -> Answer:
    """A plain client on a fresh connection through the proxy, trusting its CA."""
    return _fetch(proxy.url, ssl.create_default_context(cafile=str(proxy.ca_file)), url, body, headers)


def _fetch(proxy_url: str, context: ssl.SSLContext, url: str, body: bytes | None, headers: dict) -> Answer:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy_url}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json", **headers})
    try:
        with opener.open(request, timeout=120) as answer:
            return Answer(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def received_with(upstream, test_id: str) -> list:
    with upstream._lock:
        return [request for request in upstream.received if request.headers.get("x-test-id") == test_id]


def image_in(request) -> bytes:
    url = json.loads(request.body)["messages"][0]["content"][1]["image_url"]["url"]
    return base64.b64decode(url.split(",", 1)[1])


def status_page(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except urllib.error.URLError:
        return 0, "not listening yet"  # the status server starts just after the proxy port


def error_count(port: int, kind: str) -> int:
    return int(gauge(port, f'veil_errors_total{{kind="{kind}"}}'))


def gauge(port: int, name: str) -> float:
    _, text = status_page(port, "/metrics")
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_background(call) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        outcome["response"] = call()
        outcome["done_at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex


def start(tmp_path, upstream, *options: str, policy=None):
    metrics_port = free_port()
    extra = ("--set", f"veil_metrics_port={metrics_port}", *options)
    proxy = start_mitmdump(tmp_path, upstream.port, policy or DEFAULT_POLICY, *extra)
    proxy.metrics_port = metrics_port
    wait_for(lambda: status_page(metrics_port, "/healthz")[0] == 200, what="the status server")
    return proxy


def test_health_and_readiness_answer_on_the_metrics_port(tmp_path, upstream):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1")
    try:
        assert status_page(proxy.metrics_port, "/healthz") == (200, "ok\n")
        assert status_page(proxy.metrics_port, "/readyz") == (200, "ready\n")
        _, text = status_page(proxy.metrics_port, "/metrics")
        assert "veil_ready 1" in text and "veil_images_waiting 0" in text
        assert error_count(proxy.metrics_port, "audit_write") == 0
    finally:
        stop(proxy)


def test_beyond_the_queue_limit_uploads_get_503_with_retry_after_and_other_traffic_flows(
    tmp_path, upstream, test_id, direct_tls_server
):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1", "--set", "veil_max_queued_images=1")
    photo, uploads = large_face_photo(), []
    try:
        barrier = threading.Barrier(6)

        def upload():
            barrier.wait()
            return post(proxy, CHAT, chat_body(photo), **{"x-test-id": test_id})

        uploads = [in_background(upload) for _ in range(6)]
        wait_for(lambda: gauge(proxy.metrics_port, "veil_images_cleaning") >= 1, what="cleaning to start")
        # While the admitted photos are still being cleaned, a chat request and traffic to
        # an unprotected host are answered at once.
        chat = post(proxy, CHAT, chat_body(None))
        url, _ = direct_tls_server
        unprotected = _fetch(proxy.url, ssl.create_default_context(cafile=str(direct_tls_server[1])), url, None, {})
        chat_done = time.monotonic()
        for thread, _ in uploads:
            thread.join(120)
    finally:
        stop(proxy)
    assert chat.status_code == 200 and unprotected.body == b"direct"  # its own certificate: not decrypted
    answers = [outcome["response"] for _, outcome in uploads]
    refused = [answer for answer in answers if answer.status_code == 503]
    passed = [answer for answer in answers if answer.status_code == 200]
    assert refused and passed and len(refused) + len(passed) == 6
    assert max(outcome["done_at"] for _, outcome in uploads) > chat_done  # chat did not wait behind them
    for answer in refused:
        assert answer.headers["x-veil"] == "blocked" and int(answer.headers["retry-after"]) >= 1
        assert "queue" in answer.json()["error"]["message"]
    arrived = received_with(upstream, test_id)
    assert len(arrived) == len(passed)
    for request in arrived:
        assert_clean_and_masked(image_in(request))
    blocked = [r for r in proxy.audit_records() if r["event"] == "blocked"]
    assert len(blocked) == len(refused) and all("queue" in r["reason"] for r in blocked)


def test_an_image_over_its_time_limit_is_blocked_and_its_worker_killed(tmp_path, upstream, test_id):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nservices:\n"
        "  openai-api:\n    hosts: [api.openai.com]\n    limits: {image_timeout_seconds: 0.2}\n"
        "  anthropic-api:\n    hosts: [api.anthropic.com]\n"
    )
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1", policy=policy)
    try:
        wait_for(lambda: len(worker_pids(proxy.process.pid)) == 1, what="the worker to start")
        [first_worker] = worker_pids(proxy.process.pid)
        timed_out = post(proxy, CHAT, chat_body(large_face_photo()), **{"x-test-id": test_id})
        assert timed_out.status_code == 403
        assert "took longer than 0.2 s" in timed_out.json()["error"]["message"]
        wait_for(lambda: not alive(first_worker), what="the overrunning worker to be killed")
        cleaned = post(proxy, CLAUDE, claude_body(face_photo_with_gps()), **{"x-test-id": test_id})
        assert cleaned.status_code == 200  # the replacement pool cleans the next image
        assert error_count(proxy.metrics_port, "worker_timeout") == 1
    finally:
        stop(proxy)
    assert [r.path for r in received_with(upstream, test_id)] == ["/v1/messages"]
    assert "exceeded the 0.2 s limit for one image; replacing the worker pool" in proxy.output()


def worker_pids(proxy_pid: int) -> list[int]:
    """The cleaning workers: children of the forkserver, which is a child of mitmdump."""
    children = _children()
    forkservers = [pid for pid in children.get(proxy_pid, []) if b"forkserver" in _cmdline(pid)]
    return [worker for server in forkservers for worker in children.get(server, [])]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_service_that_resets_gets_only_clean_bytes_and_the_proxy_keeps_serving(tmp_path, upstream, test_id):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1")
    try:
        reset = post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": test_id, "x-test-fault": "reset"})
        assert reset.status_code == 502
        assert error_count(proxy.metrics_port, "upstream") == 1
        after = post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": test_id})
        assert after.status_code == 200
    finally:
        stop(proxy)
    arrived = received_with(upstream, test_id)
    assert len(arrived) == 2
    for request in arrived:
        assert_clean_and_masked(image_in(request))
    assert "Veil: upload to openai-api failed after Veil's decision" in proxy.output()


def test_a_stalled_service_does_not_hold_up_other_uploads(tmp_path, upstream, test_id):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1")
    try:
        slow_id = test_id + "-slow"
        stalled, outcome = in_background(
            lambda: post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": slow_id, "x-test-fault": "stall:4"})
        )
        wait_for(lambda: received_with(upstream, slow_id), what="the stalled upload to reach the service")
        other = post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": test_id})
        other_done = time.monotonic()
        stalled.join(60)
    finally:
        stop(proxy)
    assert other.status_code == 200 and outcome["response"].status_code == 200
    assert other_done < outcome["done_at"]
    for request in received_with(upstream, slow_id) + received_with(upstream, test_id):
        assert_clean_and_masked(image_in(request))


def test_sigterm_drains_uploads_in_flight_and_refuses_new_ones(tmp_path, upstream, test_id):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1", "--set", "veil_drain_seconds=20")
    try:
        in_flight, outcome = in_background(
            lambda: post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": test_id, "x-test-fault": "stall:3"})
        )
        wait_for(lambda: received_with(upstream, test_id), what="the upload to reach the service")
        os.kill(proxy.process.pid, signal.SIGTERM)  # the process alone, as Kubernetes and systemd (KillMode=mixed) do
        wait_for(lambda: status_page(proxy.metrics_port, "/readyz")[0] == 503, what="readiness to fail")
        assert status_page(proxy.metrics_port, "/readyz")[1].startswith("draining: 1 upload(s) in flight")
        refused = post(proxy, CHAT, chat_body(face_photo_with_gps()), **{"x-test-id": test_id + "-late"})
        in_flight.join(60)
        exit_code = proxy.process.wait(30)
    finally:
        stop(proxy)
    assert outcome["response"].status_code == 200  # the upload in flight finished
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.headers["connection"] == "close"  # the retry opens a connection the balancer sends elsewhere
    assert "shutting down" in refused.json()["error"]["message"]
    assert received_with(upstream, test_id + "-late") == []
    assert exit_code == 0
    assert "draining 1 upload(s) in flight" in proxy.output()


def test_an_audit_log_that_cannot_be_written_refuses_uploads_until_it_can(tmp_path, upstream, test_id):
    # Errors only, no flow lines: mitmdump's own output file must stay under the file size
    # limit used below to make the audit log fail, so the error message can be read.
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1", "--set", "termlog_verbosity=error", "--set", "flow_detail=0")
    try:
        photo = face_photo_with_gps()
        assert post(proxy, CHAT, chat_body(photo), **{"x-test-id": test_id}).status_code == 200
        limit = max(proxy.audit_log.stat().st_size, proxy.log_file.stat().st_size + 4096)
        _, hard = resource.prlimit(proxy.process.pid, resource.RLIMIT_FSIZE)
        # The audit log gets no bigger: like a full disk, each write fails (EFBIG).
        _pad_audit_log_to(proxy, limit)
        resource.prlimit(proxy.process.pid, resource.RLIMIT_FSIZE, (limit, hard))
        refused = post(proxy, CHAT, chat_body(photo), **{"x-test-id": test_id + "-refused"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "cannot write its audit log (File too large)" in refused.json()["error"]["message"]
        chat = post(proxy, CHAT, chat_body(None))  # no image, nothing to record: unaffected
        assert chat.status_code == 200
        status, reason = status_page(proxy.metrics_port, "/readyz")
        assert status == 503 and reason.startswith("the audit log cannot be written: File too large")
        assert error_count(proxy.metrics_port, "audit_write") >= 1
        resource.prlimit(proxy.process.pid, resource.RLIMIT_FSIZE, (hard, hard))
        wait_for(lambda: status_page(proxy.metrics_port, "/readyz")[0] == 200, what="recovery")
        assert post(proxy, CHAT, chat_body(photo), **{"x-test-id": test_id}).status_code == 200
    finally:
        stop(proxy)
    assert received_with(upstream, test_id + "-refused") == []
    assert len(received_with(upstream, test_id)) == 2
    verdict = verify(files.chain_files([proxy.audit_log]))
    assert verdict.intact, verdict.problem
    *_, refused_record, last = proxy.audit_records()
    assert refused_record["event"] == "blocked" and "cannot write its audit log" in refused_record["reason"]
    assert last["event"] == "sanitised"
    assert "cannot write the audit log" in proxy.output()


def _pad_audit_log_to(proxy, size: int):
    """Make the audit log at least `size` bytes with real chained records, so that a file
    size limit of `size` lets mitmdump's small output file grow but not the audit log."""
    while proxy.audit_log.stat().st_size < size:
        assert post(proxy, CHAT, chat_body(face_photo_with_gps())).status_code == 200


def test_kill_9_under_load_leaves_a_log_that_verifies_and_a_restart_continues_it(tmp_path, upstream, test_id):
    proxy = start(tmp_path, upstream, "--set", "veil_workers=1")
    photo = face_photo_with_gps()
    uploads = [in_background(lambda: post_ignoring_errors(proxy, photo, test_id)) for _ in range(8)]
    wait_for(lambda: len(proxy.audit_records()) >= 2, what="some audit records")
    os.killpg(proxy.process.pid, signal.SIGKILL)
    proxy.process.wait()
    for thread, _ in uploads:
        thread.join(60)
    verdict = verify(files.chain_files([proxy.audit_log]))
    assert verdict.intact, verdict.problem  # each record is one write(): a kill cannot split it
    written = verdict.records
    restarted = start(tmp_path, upstream, "--set", "veil_workers=1")
    try:
        assert post(restarted, CHAT, chat_body(photo)).status_code == 200
    finally:
        stop(restarted)
    verdict = verify(files.chain_files([restarted.audit_log]))
    assert verdict.intact and verdict.records == written + 2  # the upload and its outcome


def post_ignoring_errors(proxy, photo: bytes, test_id: str):
    try:
        return post(proxy, CHAT, chat_body(photo), **{"x-test-id": test_id})
    except OSError as error:  # the proxy was killed under it
        return error

