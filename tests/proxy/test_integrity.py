"""Header and field fix-ups after Veil changed a body (integrity.py, pure)."""

import base64
import hashlib
import json

from veil.proxy import integrity
from veil.proxy.integrity import Resized, UploadLedger


def test_content_md5_is_base64_of_the_digest():
    assert integrity.content_md5(b"hello") == base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    assert integrity.content_md5(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="


def test_md5_headers_are_recomputed_from_the_transmitted_body_only_when_present():
    body = b"clean bytes"
    fixes = integrity.header_fixes({"Content-MD5": "old", "X-Ms-Blob-Content-MD5": "old"}, body, [Resized(20, 11)])
    assert fixes == {"content-md5": integrity.content_md5(body), "x-ms-blob-content-md5": integrity.content_md5(body)}
    assert integrity.header_fixes({"content-type": "image/jpeg"}, body, [Resized(20, 11)]) == {}


def test_x_file_size_names_the_image_it_declared():
    assert integrity.header_fixes({"x-file-size": "5000"}, b"", [Resized(5000, 4200)]) == {"x-file-size": "4200"}
    two = [Resized(100, 90), Resized(5000, 4200)]
    assert integrity.header_fixes({"x-file-size": "5000"}, b"", two) == {"x-file-size": "4200"}
    assert integrity.header_fixes({"x-file-size": "77"}, b"", two) == {}  # names no image: left alone
    assert integrity.header_fixes({"x-file-size": "5000"}, b"", [Resized(5000, 5000)]) == {}
    assert integrity.header_fixes({"x-file-size": "abc"}, b"", [Resized(5000, 4200)]) == {}


def test_goog_declared_length_follows_the_image():
    fixes = integrity.header_fixes({"X-Goog-Upload-Header-Content-Length": "834"}, b"", [Resized(834, 700)])
    assert fixes == {"x-goog-upload-header-content-length": "700"}


def test_whole_resumable_uploads_pass_and_split_images_are_refused():
    whole = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"}
    assert integrity.split_upload_refusal(whole, holds_image=True) is None
    assert integrity.split_upload_refusal({"X-Goog-Upload-Command": "start"}, holds_image=False) is None
    assert integrity.split_upload_refusal({}, holds_image=True) is None  # not a resumable chunk
    first = {"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"}
    assert "several resumable chunks" in integrity.split_upload_refusal(first, holds_image=True)
    later = {"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "8388608",
             "x-goog-upload-header-content-type": "image/jpeg"}  # fmt: skip
    assert "offset 8388608" in integrity.split_upload_refusal(later, holds_image=False)
    document_chunk = {"x-goog-upload-command": "upload", "x-goog-upload-offset": "8388608",
                      "x-goog-upload-header-content-type": "application/pdf"}  # fmt: skip
    assert integrity.split_upload_refusal(document_chunk, holds_image=False) is None


def test_upload_paths():
    assert integrity.upload_part_id("/v1/uploads/upload_abc/parts") == "upload_abc"
    assert integrity.upload_part_id("/v1/uploads/upload_abc/parts?x=1") == "upload_abc"
    assert integrity.upload_part_id("/v1/uploads/upload_abc/complete") is None
    assert integrity.upload_complete_id("/v1/uploads/upload_abc/complete") == "upload_abc"


def _complete(part_ids, md5="0" * 32) -> bytes:
    return json.dumps({"part_ids": part_ids, "md5": md5}).encode()


def test_complete_md5_is_recomputed_over_the_parts_as_sent():
    ledger = UploadLedger()
    ledger.part_received("up1", "part_a", b"clean-1", changed=True)
    ledger.part_received("up1", "part_b", b"tail", changed=False)
    body = _complete(["part_a", "part_b"])
    fixed = ledger.complete_body("up1", body)
    assert json.loads(fixed) == {"part_ids": ["part_a", "part_b"], "md5": hashlib.md5(b"clean-1tail").hexdigest()}
    assert len(fixed) == len(body)  # the value was replaced in place, every other byte kept


def test_complete_is_left_alone_when_nothing_changed_or_no_md5():
    ledger = UploadLedger()
    ledger.part_received("up1", "part_a", b"same", changed=False)
    assert ledger.complete_body("up1", _complete(["part_a"])) is None
    ledger.part_received("up2", "part_a", b"clean", changed=True)
    assert ledger.complete_body("up2", json.dumps({"part_ids": ["part_a"]}).encode()) is None
    assert ledger.complete_body("unknown", _complete(["part_a"])) is None


def test_forgotten_parts_of_a_changed_upload_lose_the_md5_rather_than_keep_a_wrong_one():
    ledger = UploadLedger(max_uploads=2)
    ledger.part_received("up1", "part_a", b"clean", changed=True)
    ledger.part_received("up2", "part_a", b"x", changed=False)
    ledger.part_received("up3", "part_a", b"y", changed=False)  # evicts up1's running hash
    assert len(ledger) == 2
    assert json.loads(ledger.complete_body("up1", _complete(["part_a"]))) == {"part_ids": ["part_a"]}


def test_parts_listed_in_another_order_lose_the_md5():
    ledger = UploadLedger()
    ledger.part_received("up1", "part_a", b"clean", changed=True)
    ledger.part_received("up1", "part_b", b"tail", changed=False)
    assert json.loads(ledger.complete_body("up1", _complete(["part_b", "part_a"]))) == {"part_ids": ["part_b", "part_a"]}


def test_ledger_expires():
    now = [0.0]
    ledger = UploadLedger(ttl_seconds=60, clock=lambda: now[0])
    ledger.part_received("up1", "p", b"123456", changed=True)
    now[0] = 30.0
    assert ledger.complete_body("up1", _complete(["p"])) is not None
    now[0] = 120.0
    assert ledger.complete_body("up1", _complete(["p"])) is None  # expired: forgotten entirely
    assert len(ledger) == 0
