"""Policy decisions as a real proxy applies them: monitor, block, on_error: allow, what
Veil cannot see (unparsed bodies, images by URL, WebSockets), and refusing to start on a
bad policy."""

import json
import subprocess
import textwrap

import pytest

from e2e.conftest import MITMDUMP, ROOT, require_curl, start_mitmdump, stop
from e2e.photos import face_photo_with_gps

POLICY = textwrap.dedent(
    """
    version: 1
    services:
      openai-api:
        hosts: [api.openai.com]
        rules:
          - name: watch
            paths: ["/watch/*"]
            action: monitor
          - name: forbid
            paths: ["/forbid/*"]
            action: block
          - name: lenient
            paths: ["/lenient/*"]
            on_error: allow
          - name: trusted
            paths: ["/trusted/*"]
            action: allow
          - name: refs-block
            paths: ["/refs-block/*"]
            image_references: block
          - name: body-block
            paths: ["/body-block/*"]
            unparsed_bodies: block
          - name: api
      copilot-web:
        hosts: [copilot.microsoft.com]
        unparsed_bodies: block
    """
)


@pytest.fixture(scope="module")
def policy_proxy(upstream, tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy-proxy")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    running = start_mitmdump(folder, upstream.port, policy)
    yield running
    stop(running)


def post(proxy, path: str, body: bytes) -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "-i", "--suppress-connect-headers", "--max-time", "60", "--proxy", proxy.url,
               "--cacert", str(proxy.ca_file), "--data-binary", "@-", f"https://api.openai.com{path}"]  # fmt: skip
    return subprocess.run(command, input=body, capture_output=True, timeout=90)


def test_monitor_changes_nothing_and_records_what_it_would_do(policy_proxy, upstream):
    photo = face_photo_with_gps()
    assert post(policy_proxy, "/watch/upload", photo).returncode == 0
    assert upstream.last("/watch/upload").body == photo
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "monitored" and record["rule"] == "watch"
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1 and record["sha256_after"] is None


def test_block_answers_403_and_forwards_nothing(policy_proxy, upstream):
    upstream.clear()
    done = post(policy_proxy, "/forbid/upload", face_photo_with_gps())
    assert done.stdout.split(b" ")[1] == b"403"
    assert json.loads(done.stdout.partition(b"\r\n\r\n")[2])["error"]["type"] == "veil_blocked"
    assert upstream.received == []
    assert policy_proxy.audit_records()[-1]["event"] == "blocked"


def test_on_error_allow_passes_what_cannot_be_cleaned_and_says_so(policy_proxy, upstream):
    broken = face_photo_with_gps()[:4000]
    assert post(policy_proxy, "/lenient/upload", broken).returncode == 0
    assert upstream.last("/lenient/upload").body == broken
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "passed" and "truncated" in record["reason"]


def test_allow_forwards_untouched_and_records_each_image(policy_proxy, upstream):
    photo = face_photo_with_gps()
    assert post(policy_proxy, "/trusted/upload", photo).returncode == 0
    assert upstream.last("/trusted/upload").body == photo
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "passed" and record["rule"] == "trusted" and record["bytes_before"] == len(photo)


REFERENCING = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "what is in this photo?"},
    {"type": "image_url", "image_url": {"url": "https://photos.example.com/me/beach.jpg?X-Amz-Signature=SECRET"}},
]}]}).encode()  # fmt: skip
PROTOBUF = b"\x00\x00\x00\x00\x0c\x0a\x05hello\x12\x03abc"  # a gRPC-framed message


def status(done: subprocess.CompletedProcess) -> int:
    return int(done.stdout.split(b" ")[1])


def test_an_image_given_by_url_is_forwarded_and_logged_without_its_query(policy_proxy, upstream):
    done = post(policy_proxy, "/v1/chat/completions", REFERENCING)
    assert status(done) == 200
    assert upstream.last("/v1/chat/completions").body == REFERENCING
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "passed" and record["rule"] == "api" and record["envelope"] == "json"
    assert record["location"] == "$.messages[0].content[1].image_url.url"
    assert "https://photos.example.com/me/beach.jpg" in record["reason"]
    assert "SECRET" not in policy_proxy.audit_log.read_text()


def test_an_image_given_by_url_is_refused_where_the_policy_blocks_them(policy_proxy, upstream):
    upstream.clear()
    done = post(policy_proxy, "/refs-block/chat", REFERENCING)
    assert status(done) == 403
    message = json.loads(done.stdout.partition(b"\r\n\r\n")[2])["error"]["message"]
    assert "given by URL" in message and "SECRET" not in message
    assert upstream.received == []
    assert policy_proxy.audit_records()[-1]["event"] == "blocked"


def test_an_unparsed_body_is_forwarded_and_logged_by_default(policy_proxy, upstream):
    assert status(post(policy_proxy, "/v1/grpc.Service/Method", PROTOBUF)) == 200
    assert upstream.last("/v1/grpc.Service/Method").body == PROTOBUF
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "passed" and "no parser" in record["reason"]


def test_an_unparsed_body_is_refused_where_the_policy_blocks_them(policy_proxy, upstream):
    upstream.clear()
    done = post(policy_proxy, "/body-block/grpc", PROTOBUF)
    assert status(done) == 403 and upstream.received == []
    assert "cannot inspect" in policy_proxy.audit_records()[-1]["reason"]


def websocket_upgrade(proxy, url: str) -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "-i", "--http1.1", "--suppress-connect-headers", "--max-time", "30", "--proxy", proxy.url,
               "--cacert", str(proxy.ca_file), "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
               "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", url]  # fmt: skip
    return subprocess.run(command, capture_output=True, timeout=60)


def test_a_websocket_upgrade_is_refused_on_a_host_whose_policy_blocks_unparsed_traffic(policy_proxy, upstream):
    upstream.clear()
    done = websocket_upgrade(policy_proxy, "https://copilot.microsoft.com/c/api/chat?api-version=2")
    assert status(done) == 403, done.stdout
    assert upstream.received == []
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "blocked" and record["service"] == "copilot-web" and "WebSocket" in record["reason"]
    assert record["method"] == "GET" and record["url"] == "https://copilot.microsoft.com/c/api/chat"


def test_a_websocket_upgrade_is_logged_where_the_policy_logs(policy_proxy, upstream):
    done = websocket_upgrade(policy_proxy, "https://api.openai.com/v1/realtime?model=gpt-realtime")
    assert done.returncode == 0, done.stderr
    assert upstream.last("/v1/realtime").method == "GET"
    record = policy_proxy.audit_records()[-1]
    assert record["event"] == "passed" and record["envelope"] == "websocket" and record["rule"] == "api"


def test_a_bad_policy_stops_start_up_with_a_readable_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nservices:\n  x:\n    hosts: [api.openai.com]\n    rules:\n      - faces: maks\n")
    done = subprocess.run(
        [str(MITMDUMP), "--listen-port", "0", "-s", str(ROOT / "addons" / "veil_addon.py"), "--set", f"veil_policy={bad}"],
        capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"{bad}, line 6: services.x.rules[0].faces: 'maks' is not allowed" in output
    assert "Traceback" not in output


def test_streaming_protected_bodies_is_refused_at_start_up(tmp_path):
    """A streamed body would reach the service before Veil saw it."""
    done = subprocess.run(
        [str(MITMDUMP), "--listen-port", "0", "-s", str(ROOT / "addons" / "veil_addon.py"),
         "--set", "stream_large_bodies=1m", "--set", f"veil_audit_log={tmp_path / 'audit.jsonl'}"],
        capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "stream_large_bodies=1m would forward protected uploads" in done.stdout + done.stderr


def test_veil_policy_check(tmp_path):
    veil = [str(MITMDUMP.with_name("veil")), "policy", "check"]
    good = subprocess.run([*veil, str(ROOT / "config" / "policy.yaml")], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "valid" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n")
    refused = subprocess.run([*veil, str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "line 1" in refused.stderr
