"""The egress scanner finds a dirty photo in every encoding an upload can wear, and nothing
in ordinary traffic. Containers are in test_egress_containers, the property test in
test_egress_property."""

import base64
import binascii
import hashlib
import io
import json
import random
import urllib.parse

import pytest
from fixtures import exif_bytes, picture
from PIL import Image
from test_egress_samples import b64, big_endian_tiff, chat_body, clean_jpeg, dirty_image

from veil.proxy.egress import ScanLimits, scan, unaccounted


def images_in(body: bytes) -> list:
    return scan(body).of_kind("image")


def assert_finds(body: bytes, image: bytes, image_format: str = "jpeg") -> None:
    """The photo is found whole: its decoded bytes start with the original's, its hash is the original's."""
    found = [finding for finding in images_in(body) if finding.format == image_format and bytes(finding.data[: len(image)]) == image]
    assert found, f"no {image_format} found in {scan(body).findings}"
    assert unaccounted(scan(body), []), "an image nobody produced must be unaccounted"


PHOTO = dirty_image("JPEG")

# Each form once, embedded where a client would put it.
ENCODED_BODIES = {
    "raw at an odd offset": b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx" + PHOTO + b"\r\n--b--\r\n",
    "base64 standard": chat_body(b64(PHOTO)),
    "base64 url-safe": chat_body(base64.urlsafe_b64encode(PHOTO)),
    "base64 unpadded": chat_body(base64.urlsafe_b64encode(PHOTO).rstrip(b"=")),
    "base64 wrapped every 76 characters": b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PHOTO).replace(b"\n", b"\r\n"),
    "base64 with JSON \\/ escapes": chat_body(b64(PHOTO).replace(b"/", b"\\/")),
    "base64 with JSON \\u escapes": chat_body(b64(PHOTO).replace(b"+", b"\\u002b").replace(b"/", b"\\u002F").replace(b"=", b"\\u003d")),
    "base64 with JSON \\n line breaks": chat_body(base64.encodebytes(PHOTO).replace(b"\n", b"\\n")),
    "base64 percent-encoded": b"image=" + urllib.parse.quote_from_bytes(b64(PHOTO), safe="").encode() + b"&detail=high",
    "base64 quoted-printable with soft breaks": b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + binascii.b2a_qp(b64(PHOTO)),
    "data URL with a 2 KB media-type parameter": chat_body(b"data:image/jpeg;name=" + b"n" * 2048 + b";charset=x;base64," + b64(PHOTO)),
    "base64 after a leading space": chat_body(b" " + b64(PHOTO)),
    "base64 split by spaces": chat_body(b" ".join(b64(PHOTO)[at : at + 76] for at in range(0, len(b64(PHOTO)), 76))),
    "base64 after text on an earlier line": b"file: photo\r\n" + base64.encodebytes(PHOTO),
    "hex": b'{"hex":"' + PHOTO.hex().encode() + b'"}',
    "hex, upper case, in lines, after a stray digit": b"7"
    + b"\n".join(PHOTO.hex().upper().encode()[at : at + 64] for at in range(0, len(PHOTO) * 2, 64)),
    "JSON in UTF-16 with a byte-order mark": chat_body(b64(PHOTO)).decode().encode("utf-16"),
    "JSON in UTF-16 big-endian, no mark": chat_body(b64(PHOTO)).decode().encode("utf-16-be"),
    "JSON array of bytes (Node's Buffer.toJSON)": json.dumps({"type": "Buffer", "data": list(PHOTO)}).encode(),
    "percent-encoded bytes": b"photo=" + urllib.parse.quote_from_bytes(PHOTO).encode(),
    "quoted-printable bytes": b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + binascii.b2a_qp(PHOTO, istext=False),
    "JSON string of bytes, \\u escapes": b'{"bytes":' + json.dumps(PHOTO.decode("latin-1")).encode() + b"}",
    "JSON string of bytes, UTF-8 literals": b'{"bytes":' + json.dumps(PHOTO.decode("latin-1"), ensure_ascii=False).encode() + b"}",
}


@pytest.mark.parametrize("form", list(ENCODED_BODIES))
def test_a_dirty_photo_is_found_in_every_encoding(form):
    assert_finds(ENCODED_BODIES[form], PHOTO)


def test_the_location_says_where_and_how():
    body = chat_body(b64(PHOTO))
    (finding,) = images_in(body)
    assert finding.location == f"base64 at byte {body.index(b64(PHOTO)[:8]):,} → jpeg at byte 0"
    assert finding.sha256 == hashlib.sha256(PHOTO).hexdigest()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "HEIF", "AVIF", "BMP", "PPM"])
def test_every_format_veil_knows_is_found_raw_and_in_base64(image_format):
    image = dirty_image(image_format)
    expected = {"PPM": "pnm", "HEIF": "heif"}.get(image_format, image_format.lower())
    assert_finds(b"\x00\x01junk" + image + b"tail", image, expected)
    assert_finds(chat_body(b64(image)), image, expected)
    (finding,) = images_in(b"\x00\x01junk" + image + b"tail")
    if expected in ("jpeg", "png", "gif", "webp", "bmp"):  # formats that say where they end
        assert finding.size == len(image) and finding.sha256 == hashlib.sha256(image).hexdigest()


def test_a_tiff_in_big_endian_order_is_found():
    tiff = big_endian_tiff()
    assert Image.open(io.BytesIO(tiff)).size == (6, 4)  # a real TIFF, not just its magic
    assert_finds(b"x" + tiff, tiff, "tiff")
    assert not images_in(b"x" + b"MM\x00*" + tiff[4:8] + bytes(60)), "the magic alone, with no readable IFD, is not a TIFF"


def test_base64_decoded_from_the_wrong_alignment_is_still_found():
    """Two stray characters glued in front of the base64 shift every decoded byte."""
    assert_finds(chat_body(b"Zx" + b64(PHOTO)), PHOTO)


def test_a_thumbnail_inside_a_photo_is_found_too():
    buffer = io.BytesIO()
    picture((48, 32), seed=9).save(buffer, "JPEG", exif=exif_bytes(thumbnail=True))
    found = images_in(b"x" + buffer.getvalue())
    assert len(found) == 2 and {finding.format for finding in found} == {"jpeg"}


# ---------------------------------------------------------------------------------------
# unaccounted


def test_an_image_veil_produced_is_accounted_for():
    produced = clean_jpeg()
    result = scan(chat_body(b64(produced)))
    assert len(result.of_kind("image")) == 1
    assert unaccounted(result, [produced]) == []


def test_an_image_differing_from_the_produced_one_by_one_byte_is_not():
    produced = clean_jpeg()
    sent = bytearray(produced)
    sent[len(sent) // 2] ^= 0x01  # inside the entropy-coded data: still a well-formed JPEG
    result = scan(chat_body(b64(bytes(sent))))
    (leak,) = unaccounted(result, [produced])
    assert leak.kind == "image" and leak.format == "jpeg"


def test_a_produced_output_accounts_only_for_itself():
    produced = clean_jpeg()
    body = chat_body(b64(produced)) + b"\n" + chat_body(b64(PHOTO))
    (leak,) = unaccounted(scan(body), [produced])
    assert bytes(leak.image) == PHOTO


def test_a_produced_output_is_compared_whole_even_past_the_end_its_format_gives():
    produced = clean_jpeg() + bytes(16)  # bytes after the JPEG's end marker belong to the output too
    result = scan(chat_body(b64(produced)))
    (finding,) = result.of_kind("image")
    assert finding.size == len(clean_jpeg())
    assert unaccounted(result, [produced]) == []


def test_an_empty_produced_output_accounts_for_nothing():
    assert unaccounted(scan(chat_body(b64(PHOTO))), [b""])


def test_a_prefix_match_accounts_for_an_image_whose_extent_is_unknown():
    tiff = dirty_image("TIFF")
    result = scan(b"x" + tiff + b"trailing bytes")
    (finding,) = result.of_kind("image")
    assert finding.sha256 is None  # TIFF gives no end
    assert unaccounted(result, [tiff]) == []
    assert unaccounted(result, [tiff[:-1] + b"\x00"])


# ---------------------------------------------------------------------------------------
# No false positives


def test_random_bytes_hold_no_findings():
    generator = random.Random(20261202)
    for _ in range(200):
        buffer = generator.randbytes(4096)
        assert scan(buffer).findings == (), buffer.hex()[:64]


def test_random_base64_tokens_hold_no_findings():
    generator = random.Random(7)
    tokens = [base64.b64encode(generator.randbytes(generator.randint(40, 3000))) for _ in range(200)]
    assert scan(json.dumps({"tokens": [token.decode() for token in tokens]}).encode()).findings == ()


def test_thousands_of_base64_ids_are_scanned_within_the_time_limit():
    """Each run costs a decode and head checks at four alignments: 5,000 of them must stay far
    below the default 2 s (an opaque 'time limit' finding would block the request)."""
    generator = random.Random(11)
    ids = [base64.b64encode(generator.randbytes(66)).decode() for _ in range(5000)]
    assert scan(json.dumps({"ids": ids}).encode()).findings == ()


def test_an_ordinary_chat_request_holds_no_findings():
    paragraph = (
        "Could you summarise the following meeting notes? We discussed the quarterly budget, "
        "the hiring plan for 2026, and the migration of https://intranet.example.com/wiki/Projects/Roadmap_2026 "
        "to the new platform. Action items: Alice drafts the proposal; Bob reviews the base64 encoder "
        "bug (see ticket #4521) and the 50% discount policy; deadline 2026-03-01. "
    )
    messages = [{"role": "user" if turn % 2 else "assistant", "content": paragraph * 20} for turn in range(60)]
    body = json.dumps({"model": "gpt-4o", "messages": messages, "temperature": 0.2}).encode()
    assert len(body) > 400_000
    assert scan(body).findings == ()


def test_a_chat_request_full_of_code_and_escapes_holds_no_findings():
    snippet = 'def main():\n\tprint("hello, \\"world\\"")  # café ’quoted’ 100%\n\tpath = "C:\\\\Users"; x=10; y=FF\n'
    body = json.dumps({"messages": [{"role": "user", "content": snippet * 40} for _ in range(200)]}).encode()
    assert body.count(b"\\") > 10_000
    assert scan(body).findings == ()


def test_limits_are_reported_not_ignored():
    result = scan(chat_body(b64(b64(b64(PHOTO)))), limits=ScanLimits(max_depth=2))
    (opaque,) = result.of_kind("opaque")
    assert "deeper than 2" in opaque.reason
    assert unaccounted(result, []) == [opaque]


def test_running_out_of_time_is_reported():
    result = scan(chat_body(b64(PHOTO)), limits=ScanLimits(max_seconds=0))
    assert [finding.format for finding in result.of_kind("opaque")] == ["scan"]
