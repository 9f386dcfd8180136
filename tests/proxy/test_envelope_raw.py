import struct

import pytest

from builders import encode, gradient
from veil.proxy.envelopes import ENVELOPES, find_images, looks_like_image, raw, splice

JPEG = encode(gradient(), "JPEG", quality=80)
NEW_JPEG = encode(gradient((40, 40)), "JPEG", quality=60)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    box = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(box)) + b"ftyp" + box + bytes(32)


def test_jpeg_body_labelled_json_is_a_raw_image():
    """google-genai sends resumable upload chunks as application/json."""
    envelope, [slot] = find_images(JPEG, "application/json")
    assert envelope == "raw"
    assert (slot.location, slot.span, slot.image, slot.declared_type, slot.filename) == (
        "body",
        (0, len(JPEG)),
        JPEG,
        "application/json",
        None,
    )


def test_raw_body_is_replaced_whole():
    [slot] = raw.find_images(JPEG, "image/jpeg; charset=binary")
    assert slot.declared_type == "image/jpeg"
    assert splice(JPEG, [(slot, NEW_JPEG)]) == NEW_JPEG
    assert splice(JPEG, [(slot, slot.image)]) == JPEG


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "application/octet-stream", ""])
def test_raw_images_of_formats_veil_cannot_clean_are_still_found(content_type):
    for fmt in ("PNG", "WEBP", "GIF", "TIFF", "BMP"):
        data = encode(gradient((16, 16)), fmt)
        envelope, [slot] = find_images(data, content_type)
        assert (envelope, slot.image) == ("raw", data), fmt


@pytest.mark.parametrize(
    "head",
    [
        ftyp(b"heic", b"mif1", b"heic"),
        ftyp(b"mif1", b"heic"),
        ftyp(b"avif", b"mif1", b"miaf"),
        ftyp(b"mp42", b"mp42", b"avif"),  # the image brand is only compatible
        b"II*\x00" + bytes(60),
        b"MM\x00*" + bytes(60),
        b"GIF89a" + bytes(20),
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(20),
        b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(20),
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20),
    ],
)
def test_magic_recognises_every_image_container(head):
    assert looks_like_image(head)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",  # too short to be sure
        b"BMW is a car maker and this is text",  # 'BM' without a DIB header
        ftyp(b"isom", b"isom", b"iso2", b"mp41"),  # an MP4 video
        ftyp(b"qt  "),
        b"%PDF-1.7\n",
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        b"PK\x03\x04",
        b'{"json": true}',
    ],
)
def test_magic_rejects_what_is_not_an_image(data):
    assert not looks_like_image(data)


def test_non_image_bodies_belong_to_no_envelope():
    assert raw.find_images(b"hello world", "image/jpeg") is None
    assert find_images(b"purpose=vision&name=photo.jpg", "application/x-www-form-urlencoded") == ("none", [])
    assert find_images(b"", None) == ("none", [])


def test_envelopes_are_tried_raw_first_and_each_names_itself():
    assert [envelope.NAME for envelope in ENVELOPES] == ["raw", "multipart", "json", "jsonl"]
