"""The request-level promise, as a property: wrap a dirty photo in a random stack of
encodings and envelopes, run the pipeline exactly as the proxy does (in process), and judge
only what would leave: either the request is refused, or a lenient server recovers no
uncleaned image from the outgoing bytes — and in both cases there is a record."""

import base64
import binascii
import gzip
import io
import json
import sys
import urllib.parse
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import encode, exif_block, gradient
from veil import audit
from veil.policy import load_policy_text
from veil.proxy import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from lenient_server import recover_images  # noqa: E402

POLICY = """
version: 1
services:
  svc:
    hosts: [api.example.com]
    faces: off
"""
MATCH = load_policy_text(POLICY).match("api.example.com", "/upload", "POST")
FACTS = audit.RequestFacts("127.0.0.1", None, "svc", "default", "POST", "https://api.example.com/upload")
DIRTY = encode(gradient(), "JPEG", exif=b"Exif\x00\x00" + exif_block(gps=True))


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


TEXT_WRAPS = {
    "base64": _b64,
    "urlsafe": lambda data: base64.urlsafe_b64encode(data).rstrip(b"="),
    "wrapped at 76": lambda data: base64.encodebytes(data),
    "data URL": lambda data: b"data:image/jpeg;base64," + _b64(data),
    "data URL, space": lambda data: b"data:image/jpeg;base64, " + _b64(data),
    "percent": lambda data: urllib.parse.quote(_b64(data), safe="").encode(),
    "quoted-printable": lambda data: binascii.b2a_qp(data, istext=False),
}
BYTE_WRAPS = {"gzip": gzip.compress, "zip": lambda data: _zip(data)}


def _zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("IMG.jpg", data)
    return out.getvalue()


def _json(text: bytes) -> tuple[bytes, str]:
    return json.dumps({"model": "m", "input": [{"content": text.decode("latin-1")}]}).encode(), "application/json"


def _multipart(data: bytes) -> tuple[bytes, str]:
    body = b'--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + data + b"\r\n--B--\r\n"
    return body, "multipart/form-data; boundary=B"


def _form(text: bytes) -> tuple[bytes, str]:
    return urllib.parse.urlencode({"image": text.decode("latin-1")}).encode(), "application/x-www-form-urlencoded"


def _raw(data: bytes) -> tuple[bytes, str]:
    return data, "application/octet-stream"


@st.composite
def requests(draw):
    data = DIRTY
    for name in draw(st.lists(st.sampled_from(list(BYTE_WRAPS)), max_size=2)):
        data = BYTE_WRAPS[name](data)
    as_text = draw(st.booleans())
    if as_text:
        data = TEXT_WRAPS[draw(st.sampled_from(list(TEXT_WRAPS)))](data)
        carrier = draw(st.sampled_from([_json, _form, _multipart, _raw]))
    else:
        carrier = draw(st.sampled_from([_multipart, _raw]))
    body, content_type = carrier(data)
    return body, content_type


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sent=requests())
def test_nothing_uncleaned_leaves_and_nothing_is_silent(sent):
    body, content_type = sent
    headers = {"content-type": content_type}
    decision = pipeline.run_examine(pipeline.Request("POST", "/upload", headers, body, FACTS), MATCH)
    assert decision.records, "a request that carried an image has no record"
    if decision.refusal:
        assert decision.refusal.reason
        return
    leaving = decision.new_body if decision.new_body is not None else body
    for image in recover_images(headers, leaving):
        assert image != DIRTY and b"Exif" not in image[:200], "an uncleaned image would leave"
