"""The pure decisions behind the proxy: no mitmproxy, just bodies, rules and records."""

import json
import stat

import pytest

from builders import encode, exif_block, gradient
from veil import audit, gateway
from veil.policy import load_policy_text

POLICY = """
version: 1
services:
  svc:
    hosts: [api.example.com]
    rules:
      - {name: clean, paths: ["/clean"], faces: off}
      - {name: watch, paths: ["/watch"], action: monitor, faces: off}
      - {name: lenient, paths: ["/lenient"], on_error: allow, faces: off}
      - {name: strict-body, paths: ["/strict"], unparsed_bodies: block, faces: off}
"""
FACTS = audit.RequestFacts("127.0.0.1", "alice", "svc", "clean", "POST", "https://api.example.com/clean")


def rule(path: str):
    return load_policy_text(POLICY).match("api.example.com", path, "POST").rule


def gps_jpeg() -> bytes:
    return encode(gradient(), "JPEG", exif=b"Exif\x00\x00" + exif_block(gps=True))


def multipart(image: bytes) -> tuple[bytes, str]:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--XyZ--\r\n")  # fmt: skip
    return body, "multipart/form-data; boundary=XyZ"


def verdict_for(path: str, body: bytes, content_type: str) -> gateway.BodyVerdict:
    chosen = rule(path)
    envelope, slots = gateway.locate_images(body, content_type, chosen)
    verdict = gateway.BodyVerdict(envelope, [gateway.clean_image(slot, chosen) for slot in slots])
    if not verdict.blocked and chosen.action != "monitor":
        verdict.body = gateway.rebuild(body, verdict.outcomes)
    return verdict


def test_sanitised_body_changes_only_inside_the_image():
    body, content_type = multipart(gps_jpeg())
    verdict = verdict_for("/clean", body, content_type)
    [outcome] = verdict.outcomes
    assert outcome.event == "sanitised" and "gps" in outcome.result.report.metadata_removed
    start, end = outcome.slot.span
    assert verdict.body[:start] == body[:start]
    assert verdict.body[start + len(outcome.result.data) :] == body[end:]
    [record] = gateway.records(verdict, FACTS)
    assert record["event"] == "sanitised" and record["location"] == "file" and record["user"] == "alice"


def test_monitor_leaves_the_body_alone_but_reports():
    body, content_type = multipart(gps_jpeg())
    verdict = verdict_for("/watch", body, content_type)
    assert verdict.body is None and verdict.outcomes[0].event == "monitored"
    assert "gps" in gateway.records(verdict, FACTS)[0]["metadata_removed"]


def test_broken_image_blocks_the_request_or_passes_when_the_rule_allows():
    body, content_type = multipart(gps_jpeg()[:300])
    strict = verdict_for("/clean", body, content_type)
    assert strict.blocked and "past the end" in strict.blocked.reason
    assert [r["event"] for r in gateway.records(strict, FACTS)] == ["blocked"]
    lenient = verdict_for("/lenient", body, content_type)
    assert lenient.outcomes[0].event == "passed" and lenient.body is None


def test_unparsable_bodies_follow_the_rule():
    protobuf = b"\x0a\x05hello\x12\x03abc"
    assert gateway.locate_images(protobuf, "application/proto", rule("/clean")) == ("none", [])
    with pytest.raises(gateway.RequestRefused, match="cannot inspect"):
        gateway.locate_images(protobuf, "application/proto", rule("/strict"))
    with pytest.raises(gateway.RequestRefused, match="could not be parsed"):
        gateway.locate_images(b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx", "multipart/form-data; boundary=XyZ", rule("/clean"))


def test_records_hold_facts_and_hashes_never_image_bytes(tmp_path):
    image = gps_jpeg()
    body, content_type = multipart(image)
    verdict = verdict_for("/clean", body, content_type)
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    for record in gateway.records(verdict, FACTS):
        log.write(record)
    log.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert image.hex()[:64] not in text and "/9j/" not in text
    record = json.loads(text)
    assert set(record) >= {"ts", "event", "client", "user", "service", "rule", "method", "url", "envelope",
                           "location", "format", "actions", "metadata_removed", "faces", "bytes_before",
                           "bytes_after", "sha256_before", "sha256_after", "duration_ms", "reason"}  # fmt: skip
    assert record["ts"].endswith("Z")
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600


def test_public_url_drops_the_query_and_default_ports():
    assert audit.public_url("https", "h.example", 443, "/a/b?sig=SECRET") == "https://h.example/a/b"
    assert audit.public_url("https", "h.example", 8443, "/a") == "https://h.example:8443/a"
