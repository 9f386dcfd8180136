"""Samples shared by the test_egress* modules: dirty photos of every format Veil knows, and
the encodings an upload can wear. Named to sit beside them; it holds no tests."""

import base64
import binascii
import functools
import gzip
import io
import json
import struct
import urllib.parse
import zipfile
import zlib

import pillow_heif
from fixtures import exif_bytes, picture

pillow_heif.register_heif_opener()

GPS_EXIF = exif_bytes(thumbnail=False)  # GPS, owner, serial; no thumbnail JPEG inside


@functools.cache
def dirty_image(image_format: str = "JPEG", seed: int = 3, size: tuple[int, int] = (48, 32)) -> bytes:
    """A small photo of `image_format` carrying GPS EXIF (a comment for GIF, which has no EXIF)."""
    options = {"comment": b"Jane at 50.8N 0.14W"} if image_format == "GIF" else {"exif": GPS_EXIF}
    buffer = io.BytesIO()
    picture(size, seed=seed).save(buffer, image_format, **options)
    return buffer.getvalue()


@functools.cache
def clean_jpeg(seed: int = 5) -> bytes:
    """A JPEG with no metadata at all: what Veil writes."""
    buffer = io.BytesIO()
    picture((40, 30), seed=seed).save(buffer, "JPEG")
    return buffer.getvalue()


def chat_body(text: bytes) -> bytes:
    """An OpenAI-style chat request with `text` as the image URL's string contents."""
    return (
        b'{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"'
        + text
        + b'"}}]}]}'
    )


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# Encodings of arbitrary bytes, each decodable on its own (the property test stacks them).
BYTE_ENCODINGS = {
    "base64": b64,
    "base64 url-safe": base64.urlsafe_b64encode,
    "base64 unpadded": lambda data: b64(data).rstrip(b"="),
    "base64 wrapped at 76": base64.encodebytes,
    "base64 with JSON \\/": lambda data: json.dumps(b64(data).decode()).encode().replace(b"/", b"\\/"),
    "base64 with JSON \\u escapes": lambda data: b64(data).replace(b"+", b"\\u002B").replace(b"/", b"\\u002f"),
    "base64 percent-encoded": lambda data: urllib.parse.quote_from_bytes(b64(data), safe="").encode(),
    "base64 quoted-printable": lambda data: binascii.b2a_qp(b64(data)),
    "data URL": lambda data: b"data:image/jpeg;base64," + b64(data),
    "percent-encoded bytes": lambda data: urllib.parse.quote_from_bytes(data).encode(),
    "quoted-printable bytes": lambda data: binascii.b2a_qp(data, istext=False),  # istext would not round-trip CR bytes
    "JSON string of bytes": lambda data: json.dumps(data.decode("latin-1")).encode(),
    "hex": lambda data: data.hex().encode(),
    "JSON array of bytes": lambda data: json.dumps(list(data)).encode(),
    "zlib, then base64": lambda data: b64(zlib.compress(data)),  # zlib is only looked for where a stream starts
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "zip": lambda data: zip_of({"photo.jpg": data}),
}


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def big_endian_tiff(width: int = 6, height: int = 4) -> bytes:
    """A grey TIFF in Motorola byte order ("MM\\0*"), which Pillow does not write."""
    short, long = 3, 4
    entries = [(256, short, width), (257, short, height), (258, short, 8), (259, short, 1), (262, short, 1)]
    entries += [(273, long, 0), (277, short, 1), (278, short, height), (279, long, width * height)]
    pixel_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack(">H", len(entries))
    for tag, kind, value in entries:
        value = pixel_offset if tag == 273 else value
        ifd += struct.pack(">HHIHH", tag, kind, 1, value, 0) if kind == short else struct.pack(">HHII", tag, kind, 1, value)
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + b"\x00\x00\x00\x00" + bytes(range(width * height))
