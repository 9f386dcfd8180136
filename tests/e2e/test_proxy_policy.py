"""Policy decisions as a real proxy applies them: monitor, block, on_error: allow,
and refusing to start on a bad policy."""

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
