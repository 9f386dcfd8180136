"""The audit chain as a real mitmdump writes it: uploads through the proxy, then the
real `veil audit` command; metrics scraped from the running proxy; a kill -9 and a
restart; rotation on a live proxy."""

import json
import os
import signal
import time
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from e2e.conftest import free_port, require_curl, start_mitmdump, stop
from e2e.photos import face_photo_with_gps
from veil.audit.files import chain_files
from veil.audit.records import read_records

VEIL = Path(sys.executable).with_name("veil")
# A JPEG that ends inside its first segment: malformed, so the default policy blocks it.
NOT_AN_IMAGE_VEIL_CAN_CLEAN = b"\xff\xd8\xff\xe1\x40\x00Exif\x00\x00" + b"\x00" * 32


def small_photo_of_its_own() -> bytes:
    """Not the photo other tests upload: the session proxy's log is shared, and they find
    their records by the hash of the cleaned image."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (23, 140, 77)).save(buffer, "JPEG", quality=80, comment=b"audit chain e2e")
    return buffer.getvalue()


def upload(proxy, body: bytes, path: str = "/v1/files") -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "--max-time", "60", "--proxy", proxy.url, "--cacert", str(proxy.ca_file),
               "-H", "Content-Type: application/octet-stream", "--data-binary", "@-", f"https://api.openai.com{path}"]  # fmt: skip
    done = subprocess.run(command, input=body, capture_output=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return done


def veil_audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VEIL), "audit", *args], capture_output=True, text=True, timeout=60)


def test_a_log_written_through_the_proxy_verifies(proxy):
    upload(proxy, small_photo_of_its_own(), "/v1/files")
    done = veil_audit("verify", str(proxy.audit_log))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain intact" in done.stdout
    last = proxy.all_records()[-1]
    assert len(last["hash"]) == 64 and last["prev_hash"] != last["hash"] and last["seq"] == len(proxy.all_records())


def test_a_forwarded_upload_is_followed_to_its_outcome(proxy):
    upload(proxy, small_photo_of_its_own(), "/v1/files")
    cleaned = proxy.audit_records()[-1]
    [outcome] = [r for r in proxy.outcome_records() if r["request_id"] == cleaned["request_id"]]
    assert cleaned["event"] == "sanitised" and cleaned["request_id"]
    assert outcome["delivered"] is True and outcome["status"] == 200 and outcome["reason"] == "delivered: HTTP 200"
    assert outcome["url"] == cleaned["url"] and outcome["sha256_after"] is None  # facts of the request, no image


def test_a_cleaned_upload_that_never_arrived_is_not_recorded_as_delivered(proxy):
    """Issue 19: with the service unreachable the log used to say only 'sanitised'."""
    require_curl()
    command = ["curl", "-sS", "--max-time", "60", "--proxy", proxy.url, "--cacert", str(proxy.ca_file),
               "-H", "Content-Type: application/octet-stream", "-H", "X-Test-Fault: reset",
               "--data-binary", "@-", "https://api.openai.com/v1/files", "-o", "/dev/null", "-w", "%{http_code}"]  # fmt: skip
    done = subprocess.run(command, input=small_photo_of_its_own(), capture_output=True, timeout=90)
    assert done.stdout.decode() == "502"  # mitmproxy's answer when the service dropped the connection
    cleaned = proxy.audit_records()[-1]
    [outcome] = [r for r in proxy.outcome_records() if r["request_id"] == cleaned["request_id"]]
    assert cleaned["event"] == "sanitised"
    assert outcome["delivered"] is False and outcome["status"] is None and outcome["error"]
    assert outcome["reason"].startswith("not delivered: ")
    summary = veil_audit("summary", "--json", str(proxy.audit_log))
    assert json.loads(summary.stdout)["total"]["not_delivered"] >= 1


def test_the_console_says_what_veil_did_and_why_it_blocked(proxy):
    upload(proxy, small_photo_of_its_own(), "/v1/files")
    broken = face_photo_with_gps()[:2000]  # a JPEG cut short: blocked with a reason
    require_curl()
    subprocess.run(["curl", "-sS", "--max-time", "60", "--proxy", proxy.url, "--cacert", str(proxy.ca_file),
                    "-H", "Content-Type: image/jpeg", "--data-binary", "@-", "https://api.openai.com/v1/files"],
                   input=broken, capture_output=True, timeout=90)  # fmt: skip
    output = proxy.output()
    assert any(line.endswith("→ sent") and "veil: api.openai.com" in line and "removed" in line for line in output.splitlines())
    assert "veil: api.openai.com blocked: " in output


def test_blocks_raise_a_desktop_notification_when_asked(upstream, tmp_path, monkeypatch):
    """--notify / veil_notify: the platform's notifier (here a stand-in notify-send on PATH)
    gets the host and the reason, never image bytes."""
    bin_dir, called = tmp_path / "bin", tmp_path / "notified.txt"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {called}\n')
    (bin_dir / "notify-send").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    proxy = start_mitmdump(tmp_path, upstream.port, *_default_policy(), "--set", "veil_notify=true")
    try:
        require_curl()
        subprocess.run(["curl", "-sS", "--max-time", "60", "--proxy", proxy.url, "--cacert", str(proxy.ca_file),
                        "-H", "Content-Type: image/jpeg", "--data-binary", "@-", "https://api.openai.com/v1/files"],
                       input=face_photo_with_gps()[:2000], capture_output=True, timeout=90)  # fmt: skip
        deadline = time.monotonic() + 10
        while not called.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(proxy)
    lines = called.read_text().splitlines()
    assert "Veil blocked an upload" in lines and any(line.startswith("api.openai.com: ") for line in lines)
    assert all(len(line) < 400 for line in lines)


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.fixture
def live_proxy(upstream, tmp_path):
    metrics_port = free_port()
    options = ("--set", f"veil_metrics_port={metrics_port}", "--set", "veil_audit_rotate_bytes=1200")
    running = start_mitmdump(tmp_path, upstream.port, *_default_policy(), *options)
    running.metrics_port = metrics_port
    yield running
    stop(running)


def _default_policy():
    from e2e.conftest import DEFAULT_POLICY

    return (DEFAULT_POLICY,)


def test_metrics_are_scraped_from_the_running_proxy(live_proxy):
    upload(live_proxy, face_photo_with_gps())
    upload(live_proxy, face_photo_with_gps())
    upload(live_proxy, NOT_AN_IMAGE_VEIL_CAN_CLEAN)
    samples = scrape(live_proxy.metrics_port)
    service = '{service="openai-api"}'
    assert samples[f"veil_uploads_seen_total{service}"] == 3
    assert samples[f"veil_uploads_sanitised_total{service}"] == 2
    assert samples[f"veil_uploads_blocked_total{service}"] == 1
    assert samples[f"veil_faces_masked_total{service}"] >= 2
    assert samples[f"veil_sanitise_seconds_count{service}"] == 2
    assert samples['veil_sanitise_seconds_bucket{service="openai-api",le="+Inf"}'] == 2
    assert 0 < samples[f"veil_sanitise_seconds_sum{service}"] < 60


def test_rotation_kill_and_restart_keep_one_verifiable_chain(live_proxy, upstream, tmp_path):
    for _ in range(3):
        upload(live_proxy, face_photo_with_gps())
    log = live_proxy.audit_log
    assert sorted(p.name for p in tmp_path.glob("audit.jsonl.*")), "rotate_bytes=1200 should have rotated"
    os.killpg(live_proxy.process.pid, signal.SIGKILL)
    live_proxy.process.wait()
    # A kill -9 inside write() leaves part of a record: simulate that cut.
    last = log.read_bytes().splitlines(keepends=True)[-1]
    with open(log, "ab") as handle:
        handle.write(last[: len(last) // 2])
    cut_line = len(log.read_bytes().splitlines())
    broken = veil_audit("verify", str(tmp_path))
    assert broken.returncode == 1
    assert f"{log} line {cut_line}: cut off mid-write" in broken.stdout

    restarted = start_mitmdump(tmp_path, upstream.port, *_default_policy(), "--set", "veil_audit_rotate_bytes=1200")
    try:
        upload(restarted, face_photo_with_gps())
    finally:
        stop(restarted)
    done = veil_audit("verify", str(tmp_path))
    assert done.returncode == 0, done.stdout
    assert f"line {cut_line}: a record cut off mid-write, recorded by line {cut_line + 1}" in done.stdout
    events = [record["event"] for record in read_records(chain_files([tmp_path]))]
    assert events[-3:] == ["log_repaired", "sanitised", "upstream"]  # possibly in two files: rotation goes on
