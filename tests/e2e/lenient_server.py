"""What a real, lenient server would recover from a request: the images in it, however they
are wrapped. Independent of Veil's own parsers on purpose: multipart goes through Werkzeug
with the declared boundary (as Flask apps read it), JSON through the standard library, and
every string through the forgiving decoders server code actually uses (base64 that skips
whitespace, percent-decoding, quoted-printable, data URLs with any parameters)."""

import base64
import binascii
import gzip
import io
import json
import re
import urllib.parse
import zipfile
import zlib

from werkzeug.formparser import parse_form_data

MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"RIFF", b"II*\x00", b"MM\x00*")
_DATA_URL = re.compile(r"^\s*data:[^,]*?,", re.IGNORECASE | re.DOTALL)


def recover_images(headers: dict[str, str], body: bytes) -> list[bytes]:
    """Every image a lenient server would hand its application (deduplicated)."""
    body = _undo_codings(body, headers.get("transfer-encoding", ""), headers.get("content-encoding", ""))
    found: list[bytes] = []
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        found += _from_multipart(body, content_type)
    if content_type.lower().startswith("application/x-www-form-urlencoded"):
        for values in urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True).values():
            found += [image for value in values for image in _from_text(value)]
    found += _from_json(body)
    found += _from_bytes(body)
    unique: dict[bytes, None] = {}
    for image in found:
        unique.setdefault(image, None)
    return list(unique)


def _undo_codings(body: bytes, *headers: str) -> bytes:
    for header in headers:
        for coding in reversed([c.strip().lower() for c in header.split(",") if c.strip()]):
            if coding in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
            elif coding == "deflate":
                body = zlib.decompress(body)
    return body


def _from_multipart(body: bytes, content_type: str) -> list[bytes]:
    environ = {
        "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }  # fmt: skip
    try:
        _, form, files = parse_form_data(environ, silent=False)
    except Exception:
        return []  # the server refuses the body: nothing reaches its application
    found = []
    for storage in files.values():
        data = storage.read()
        encoding = storage.headers.get("content-transfer-encoding", "").lower()
        if encoding == "quoted-printable":
            data = binascii.a2b_qp(data)
        found += _from_bytes(data) + _from_text(data.decode("latin-1"))
    for value in form.values():
        found += _from_text(value) + _from_bytes(binascii.a2b_qp(value.encode("latin-1")))
    return found


def _from_json(body: bytes) -> list[bytes]:
    documents = []
    for text in [body] + body.splitlines():
        try:
            documents.append(json.loads(text))
        except (ValueError, UnicodeDecodeError):
            continue
    return [image for document in documents for string in _strings(document) for image in _from_text(string)]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _from_text(text: str) -> list[bytes]:
    """Base64 as a forgiving decoder reads it: after any data: prefix, percent-decoded,
    whitespace dropped, either alphabet, padding optional."""
    text = urllib.parse.unquote(_DATA_URL.sub("", text))
    compact = re.sub(r"\s+", "", text)
    if len(compact) < 16:
        return []
    padded = compact + "=" * (-len(compact) % 4)
    for alphabet in (None, b"-_"):
        try:
            data = base64.b64decode(padded, altchars=alphabet, validate=False)
        except (binascii.Error, ValueError):
            continue
        images = _from_bytes(data)
        if images:
            return images
    return []


def _from_bytes(data: bytes) -> list[bytes]:
    """An image from its first byte (what an app saving an upload keeps), a gzip of one, or
    the images in a ZIP (and the Office files built on it) that the app unpacks."""
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return [image for name in archive.namelist() for image in _from_bytes(archive.read(name))]
        except (zipfile.BadZipFile, RuntimeError, ValueError):
            return []
    if data.startswith(b"\x1f\x8b"):
        try:
            return _from_bytes(gzip.decompress(data))
        except (OSError, EOFError, zlib.error):
            return []
    return [data] if data.startswith(MAGIC) else []
