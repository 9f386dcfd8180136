"""The pure decisions behind the proxy: no mitmproxy, just bodies, rules and records."""

import json
import stat

import pytest

from builders import encode, exif_block, gradient
from veil import audit
from veil.proxy import pipeline
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
      - {name: quiet, paths: ["/quiet"], unparsed_bodies: allow, image_references: allow, faces: off}
      - {name: no-refs, paths: ["/no-refs"], image_references: block, faces: off}
      - {name: watch-refs, paths: ["/watch-refs"], action: monitor, image_references: block, unparsed_bodies: block, faces: off}
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


def verdict_for(path: str, body: bytes, content_type: str) -> pipeline.BodyVerdict:
    chosen = rule(path)
    envelope, slots = pipeline.locate_images(body, content_type, chosen)
    verdict = pipeline.BodyVerdict(envelope, [pipeline.clean_image(slot, chosen) for slot in slots])
    if not verdict.blocked and chosen.action != "monitor":
        verdict.body = pipeline.rebuild(body, verdict.outcomes)
    return verdict


def test_sanitised_body_changes_only_inside_the_image():
    body, content_type = multipart(gps_jpeg())
    verdict = verdict_for("/clean", body, content_type)
    [outcome] = verdict.outcomes
    assert outcome.event == "sanitised" and "gps" in outcome.result.report.metadata_removed
    start, end = outcome.slot.span
    assert verdict.body[:start] == body[:start]
    assert verdict.body[start + len(outcome.result.data) :] == body[end:]
    [record] = pipeline.records(verdict, FACTS)
    assert record["event"] == "sanitised" and record["location"] == "file" and record["user"] == "alice"


def test_monitor_leaves_the_body_alone_but_reports():
    body, content_type = multipart(gps_jpeg())
    verdict = verdict_for("/watch", body, content_type)
    assert verdict.body is None and verdict.outcomes[0].event == "monitored"
    assert "gps" in pipeline.records(verdict, FACTS)[0]["metadata_removed"]


def test_broken_image_blocks_the_request_or_passes_when_the_rule_allows():
    body, content_type = multipart(gps_jpeg()[:300])
    strict = verdict_for("/clean", body, content_type)
    assert strict.blocked and "past the end" in strict.blocked.reason
    assert [r["event"] for r in pipeline.records(strict, FACTS)] == ["blocked"]
    lenient = verdict_for("/lenient", body, content_type)
    assert lenient.outcomes[0].event == "passed" and lenient.body is None


def test_unparsable_bodies_follow_the_rule():
    protobuf = b"\x0a\x05hello\x12\x03abc"
    assert pipeline.locate_images(protobuf, "application/proto", rule("/clean")) == ("none", [])
    with pytest.raises(pipeline.RequestRefused, match="cannot inspect"):
        pipeline.locate_images(protobuf, "application/proto", rule("/strict"))
    with pytest.raises(pipeline.RequestRefused, match="could not be parsed"):
        pipeline.locate_images(b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx", "multipart/form-data; boundary=XyZ", rule("/clean"))


def test_records_hold_facts_and_hashes_never_image_bytes(tmp_path):
    image = gps_jpeg()
    body, content_type = multipart(image)
    verdict = verdict_for("/clean", body, content_type)
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    for record in pipeline.records(verdict, FACTS):
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


PROTOBUF = b"\x0a\x05hello\x12\x03abc"
REFERENCING = json.dumps({"messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "https://cdn.example.com/p/cat.jpg?X-Amz-Signature=SECRET"}},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
]}]}).encode()  # fmt: skip


def verdict_of(path: str, body: bytes, content_type: str | None) -> pipeline.BodyVerdict:
    """What the addon builds from pipeline.inspect, without cleaning (no images here)."""
    chosen = rule(path)
    inspection = pipeline.inspect(body, content_type, chosen)
    return pipeline.BodyVerdict(
        inspection.envelope,
        unparsed=pipeline.unparsed_to_log(inspection, body, chosen),
        references=inspection.references,
    )


def test_unparsed_bodies_log_by_default_with_one_passed_record():
    verdict = verdict_of("/clean", PROTOBUF, "application/proto")
    [record] = pipeline.records(verdict, FACTS)
    assert record["event"] == "passed" and "no parser" in record["reason"] and record["location"] is None


def test_unparsed_bodies_allow_forwards_without_a_record():
    verdict = verdict_of("/quiet", PROTOBUF, "application/proto")
    assert not verdict.unparsed and pipeline.records(verdict, FACTS) == []


def test_unparsed_bodies_block_refuses():
    with pytest.raises(pipeline.RequestRefused, match="cannot inspect"):
        verdict_of("/strict", PROTOBUF, "application/proto")


def test_an_empty_body_is_not_an_unparsed_one():
    assert pipeline.records(verdict_of("/clean", b"", None), FACTS) == []


def test_image_references_log_one_passed_record_each_without_the_query():
    verdict = verdict_of("/clean", REFERENCING, "application/json")
    [record] = pipeline.records(verdict, FACTS)
    assert record["event"] == "passed" and record["envelope"] == "json"
    assert record["location"] == "$.messages[0].content[0].image_url.url"
    assert "https://cdn.example.com/p/cat.jpg" in record["reason"] and "Veil never sees it" in record["reason"]
    assert "SECRET" not in json.dumps(record) and "?" not in record["reason"]
    assert "1 image(s) given by URL" in pipeline.summary(verdict)


def test_image_references_allow_skips_them():
    assert pipeline.records(verdict_of("/quiet", REFERENCING, "application/json"), FACTS) == []


def test_image_references_block_refuses_naming_the_path_not_the_query():
    with pytest.raises(pipeline.RequestRefused) as refused:
        verdict_of("/no-refs", REFERENCING, "application/json")
    assert "$.messages[0].content[0].image_url.url" in refused.value.reason
    assert "SECRET" not in refused.value.reason and "given by URL" in refused.value.reason


def test_monitor_never_blocks_what_it_cannot_see_it_records_it():
    verdict = verdict_of("/watch-refs", REFERENCING, "application/json")
    assert [record["event"] for record in pipeline.records(verdict, FACTS)] == ["passed"]
    unparsed = verdict_of("/watch-refs", PROTOBUF, "application/proto")
    assert [record["event"] for record in pipeline.records(unparsed, FACTS)] == ["passed"]
    assert pipeline.websocket_decision(rule("/watch-refs")) == "log"


def test_websocket_decision_follows_unparsed_bodies():
    assert pipeline.websocket_decision(rule("/clean")) == "log"
    assert pipeline.websocket_decision(rule("/quiet")) == "allow"
    assert pipeline.websocket_decision(rule("/strict")) == "block"
    record = pipeline.websocket_record(FACTS)
    assert record["event"] == "passed" and record["envelope"] == "websocket" and "not inspected" in record["reason"]


def test_a_blocked_image_record_names_its_format():
    body, content_type = multipart(gps_jpeg()[:300])
    verdict = verdict_for("/clean", body, content_type)
    [record] = pipeline.records(verdict, FACTS)
    assert record["event"] == "blocked" and record["format"] == "jpeg"
