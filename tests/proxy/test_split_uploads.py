"""Uploads split over several requests are held and judged whole (split_uploads.py)."""

import json
import stat

import pytest
from veil.proxy.split_uploads import (
    SYNTHETIC_PART_PREFIX,
    HeldUploads,
    PieceRefused,
    SplitUploads,
)

LIMIT = 10_000_000
FILE = b"\xff\xd8\xff\xe1" + bytes(range(256)) * 40  # a JPEG's first bytes, then more


def openai_part(data: bytes) -> tuple[bytes, dict]:
    body = (b'--B\r\nContent-Disposition: form-data; name="data"; filename="data"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--B--\r\n")  # fmt: skip
    return body, {"content-type": "multipart/form-data; boundary=B"}


def started_openai(uploads: SplitUploads, declared: int = len(FILE)) -> None:
    uploads.learn("POST", "api.openai.com", "/v1/uploads", {}, json.dumps({"bytes": declared}).encode(),
                  200, {}, json.dumps({"id": "upload_1"}).encode())  # fmt: skip


def test_openai_parts_are_held_answered_and_sent_whole_in_the_last_part():
    uploads = SplitUploads()
    started_openai(uploads)
    first, second, third = FILE[:3], FILE[3:5000], FILE[5000:]  # the first too short to sniff
    answers = []
    for piece_data in (first, second):
        body, headers = openai_part(piece_data)
        piece = uploads.piece("POST", "/v1/uploads/upload_1/parts", headers, body, LIMIT)
        status, _, content = piece.answer
        answers.append(json.loads(content))
        assert status == 200 and answers[-1]["id"].startswith(SYNTHETIC_PART_PREFIX)
    body, headers = openai_part(third)
    last = uploads.piece("POST", "/v1/uploads/upload_1/parts", headers, body, LIMIT)
    new_body, _ = last.whole
    assert new_body == openai_part(FILE)[0]  # the last part now carries the whole file
    listed = [answer["id"] for answer in answers] + ["part_real"]
    complete = uploads.complete_body("/v1/uploads/upload_1/complete", json.dumps({"part_ids": listed, "md5": "x"}).encode())
    assert json.loads(complete) == {"part_ids": ["part_real"], "md5": "x"}
    assert len(uploads.held) == 0


def test_a_part_of_an_upload_whose_start_was_not_seen_is_refused():
    body, headers = openai_part(FILE)
    piece = SplitUploads().piece("POST", "/v1/uploads/upload_9/parts", headers, body, LIMIT)
    assert "did not see" in piece.refusal


def test_parts_past_the_declared_length_or_the_limit_are_refused():
    uploads = SplitUploads()
    started_openai(uploads, declared=10)
    body, headers = openai_part(FILE[:20])
    assert "more than the 10" in uploads.piece("POST", "/v1/uploads/upload_1/parts", headers, body, LIMIT).refusal
    started_openai(uploads)
    assert "grows past 15 bytes" in uploads.piece("POST", "/v1/uploads/upload_1/parts", headers, body, 15).refusal


def test_complete_listing_parts_in_another_order_is_refused():
    uploads = SplitUploads()
    started_openai(uploads)
    ids = []
    for chunk in (FILE[:10], FILE[10:]):
        body, headers = openai_part(chunk)
        piece = uploads.piece("POST", "/v1/uploads/upload_1/parts", headers, body, LIMIT)
        ids += [json.loads(piece.answer[2])["id"]] if piece.answer else ["part_real"]
    with pytest.raises(PieceRefused, match="another order"):
        uploads.complete_body("/v1/uploads/upload_1/complete", json.dumps({"part_ids": ids[::-1]}).encode())


def google_start(uploads: SplitUploads, declared: int | None = len(FILE)) -> None:
    headers = {"x-goog-upload-command": "start"}
    if declared is not None:
        headers["x-goog-upload-header-content-length"] = str(declared)
    uploads.learn("POST", "generativelanguage.googleapis.com", "/upload/v1beta/files", headers, b"{}", 200,
                  {"x-goog-upload-url": "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=U1&upload_protocol=resumable"}, b"{}")  # fmt: skip


def chunk(uploads, data: bytes, offset: int, command: str):
    headers = {"x-goog-upload-command": command, "x-goog-upload-offset": str(offset)}
    return uploads.piece("POST", "/upload/v1beta/files?upload_id=U1&upload_protocol=resumable", headers, data, LIMIT)


def test_google_chunks_are_held_and_the_finalize_carries_the_whole_file_at_offset_0():
    uploads = SplitUploads()
    google_start(uploads)
    held = chunk(uploads, FILE[:7], 0, "upload")
    assert held.answer[1] == {"X-Goog-Upload-Status": "active", "X-Goog-Upload-Size-Received": "7"}
    query = uploads.piece("POST", "/upload/v1beta/files?upload_id=U1", {"x-goog-upload-command": "query"}, b"", LIMIT)
    assert query.answer[1]["X-Goog-Upload-Size-Received"] == "7"
    last = chunk(uploads, FILE[7:], 7, "upload, finalize")
    assert last.whole == (FILE, {"x-goog-upload-offset": "0", "x-goog-upload-command": "upload, finalize"})


def test_google_chunks_out_of_order_or_unseen_are_refused():
    uploads = SplitUploads()
    assert "did not see" in chunk(uploads, FILE[7:], 7, "upload, finalize").refusal
    assert "did not see" in chunk(uploads, FILE[:7], 0, "upload").refusal
    assert chunk(uploads, FILE, 0, "upload, finalize") is None  # whole in one request: judged as any body
    google_start(uploads)
    chunk(uploads, FILE[:7], 0, "upload")
    assert "offset 9" in chunk(uploads, FILE[9:], 9, "upload, finalize").refusal


def test_google_upload_ending_off_its_declared_length_is_refused():
    uploads = SplitUploads()
    google_start(uploads, declared=len(FILE) + 5)
    assert "declared" in chunk(uploads, FILE, 0, "upload, finalize").refusal


def test_held_bytes_spill_to_a_private_file_and_expire():
    now = [0.0]
    held = HeldUploads(ttl_seconds=10, clock=lambda: now[0])
    held.start(("google", "a"), None)
    held.append(("google", "a"), b"x" * 2_000_000, LIMIT)  # past the in-memory spill size
    spooled = held.get(("google", "a")).data
    assert spooled._rolled  # on disk (unnamed), in a folder only this user can read
    assert stat.S_IMODE(held._directory.stat().st_mode) == 0o700
    now[0] = 11
    assert held.get(("google", "a")) is None and len(held) == 0


def test_the_total_held_is_bounded_with_a_retryable_refusal():
    held = HeldUploads(max_total_bytes=100)
    held.start(("google", "a"), None)
    with pytest.raises(PieceRefused) as refused:
        held.append(("google", "a"), b"x" * 101, LIMIT)
    assert refused.value.status == 503
