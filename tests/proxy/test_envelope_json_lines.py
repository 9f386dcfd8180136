"""JSON Lines bodies (OpenAI Batch input files): every line's images, raw or as a multipart
file part, rebuilt byte-exactly; references per line."""

import base64
import json

import pytest
from builders import encode, exif_block, gradient
from veil.proxy.envelopes import find_images, json_lines, splice
from veil.proxy.envelopes.base import EnvelopeError
from veil.proxy.envelopes.references import Reference


def batch_line(number: int, image: bytes | None = None, url: str | None = None) -> bytes:
    source = "data:image/jpeg;base64," + base64.b64encode(image).decode() if image else url
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": source}}]}]}
    return json.dumps({"custom_id": f"request-{number}", "method": "POST", "url": "/v1/chat/completions", "body": request}).encode()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(gradient(), "JPEG", exif=b"Exif\x00\x00" + exif_block(gps=True))


def test_every_line_of_a_batch_file_is_searched(photo):
    body = batch_line(1, photo) + b"\n" + batch_line(2, photo) + b"\r\n\n" + batch_line(3, url="https://example.com/a.jpg") + b"\n"
    envelope, slots = find_images(body, "application/jsonl")
    assert envelope == "jsonl"
    assert [slot.location for slot in slots] == [f"line {n}:$.body.messages[0].content[0].image_url.url" for n in (1, 2)]
    assert all(slot.image == photo for slot in slots)
    rebuilt = splice(body, [(slot, b"clean") for slot in slots])
    assert rebuilt == body.replace(base64.b64encode(photo), base64.b64encode(b"clean"))
    assert json_lines.find_references(body) == [Reference("line 3:$.body.messages[0].content[0].image_url.url", "url", "https://example.com/a.jpg")]


def test_a_batch_file_in_a_multipart_upload_is_searched(photo):
    file_part = batch_line(1, photo) + b"\n" + batch_line(2, photo) + b"\n"
    body = (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="batch.jsonl"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + file_part + b"\r\n--B--\r\n")  # fmt: skip
    envelope, slots = find_images(body, "multipart/form-data; boundary=B")
    assert envelope == "multipart" and [slot.location.split(":", 1)[0] for slot in slots] == ["file", "file"]
    assert all(slot.image == photo for slot in slots)


@pytest.mark.parametrize("body", [b'{"a": 1}\n', b"plain\ntext\n", b"not json\n{}\n"])
def test_one_document_or_a_first_line_that_is_not_json_is_not_json_lines(body):
    assert json_lines.find_images(body, None) is None


def test_a_later_line_that_is_not_json_makes_the_whole_body_unreadable(photo):
    # The outside test's leak: one broken line, and the photos on every other line passed.
    body = batch_line(1, photo) + b"\nnot json\n" + batch_line(3, photo) + b"\n"
    with pytest.raises(EnvelopeError, match="line 2 of the JSON Lines body is not a JSON document"):
        json_lines.find_images(body, None)
