"""Every image a lenient server could decode from a request body, found without Veil's
envelope code: Python's json module (which also reads NaN, UTF-16 and JSON Lines), a
multipart splitter that accepts bare LF or CR line breaks and nested multipart parts (as
Werkzeug, Go and Apache Commons FileUpload do), and base64 decoded the forgiving way
(whitespace ignored, padding optional, either alphabet).

If one of these images is dirty after Veil forwarded the body, Veil missed it.
"""

import base64
import binascii
import io
import json
import re

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

MAX_DEPTH = 8
# Two-byte JPEG start (what libjpeg checks), the other formats' signatures.
_MAGIC = (b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
_DATA_URL = re.compile(rb"^\s*data:[^,]*?;base64,", re.IGNORECASE)
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=_\-\s]")
_BOUNDARY_PARAMETER = re.compile(r'boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)


def is_image(data: bytes) -> bool:
    """Starts like an image and Pillow (with pillow-heif) opens it: two bytes of JPEG
    magic, or a PNG signature decoded from prose, are no image anybody decodes."""
    if not (data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or data[4:8] == b"ftyp"):
        return False
    try:
        Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - Pillow fails in many ways, all meaning "not an image"
        return False
    return True


def images_in(body: bytes, content_type: str | None, depth: int = 0) -> list[bytes]:
    if depth > MAX_DEPTH or not body:
        return []
    found = [body] if is_image(body) else []
    found += _in_text(body)
    found += _in_json(body, depth)
    found += _in_multipart(body, content_type, depth)
    return found


def _in_text(text: bytes) -> list[bytes]:
    """A body or field that is a data URL or bare base64 of an image."""
    payload = text[_DATA_URL.match(text).end() :] if _DATA_URL.match(text) else text
    if len(payload) < 16 or _NOT_BASE64.search(payload[:4096]):
        return []
    compact = re.sub(rb"\s", b"", payload).rstrip(b"=")
    try:
        decoded = base64.b64decode(compact.translate(bytes.maketrans(b"-_", b"+/")) + b"=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        return []
    return [decoded] if is_image(decoded) else []


def _in_json(body: bytes, depth: int) -> list[bytes]:
    try:
        documents = [json.loads(body, strict=False)]
    except (ValueError, RecursionError):
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            return []
        try:  # JSON Lines: every line a document
            documents = [json.loads(line, strict=False) for line in lines]
        except (ValueError, RecursionError):
            return []
    found = []
    for document in documents:
        for text in _strings(document):
            encoded = text.encode("utf-8", "surrogatepass")
            found += _in_text(encoded)
            if encoded.lstrip()[:1] in (b"{", b"["):
                found += _in_json(encoded, depth + 1)
    return found


def _strings(node) -> list[str]:
    stack, strings = [node], []
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            stack += list(node.keys()) + list(node.values())
        elif isinstance(node, list):
            stack += node
    return strings


def _boundary(content_type: str | None) -> bytes | None:
    """The boundary a server splits on: the one its multipart Content-Type names (a body
    whose type is not multipart, or names no boundary, is not split by anyone)."""
    if not content_type or not content_type.strip().lower().startswith("multipart/"):
        return None
    match = _BOUNDARY_PARAMETER.search(content_type)
    if not match:
        return None
    return (match.group(1) if match.group(1) is not None else match.group(2)).encode()


def _in_multipart(body: bytes, content_type: str | None, depth: int) -> list[bytes]:
    found = []
    for headers, start, end in parts(body, content_type):
        content = body[start:end]
        if _header(headers, "content-transfer-encoding").lower() == "base64":
            found += _in_text(content)
        found += images_in(content, _header(headers, "content-type"), depth + 1)
    return found


def parts(body: bytes, content_type: str | None) -> list[tuple[bytes, int, int]]:
    """(headers, content start, content end) of each part, split as a lenient server does."""
    boundary = _boundary(content_type)
    if boundary is None:
        return []
    found = []
    delimiter = re.compile(rb"(?:^|\r\n|\n|\r)--" + re.escape(boundary) + rb"(--)?[ \t]*(?=\r\n|\n|\r|$)")
    matches = list(delimiter.finditer(body))
    for this, following in zip(matches, matches[1:]):
        if this.group(1):  # the close delimiter: the rest is epilogue
            break
        start = this.end() + (2 if body.startswith(b"\r\n", this.end()) else 1)
        headers, content_start = _split_part(body, start, following.start())
        found.append((headers, content_start, following.start()))
    return found


def opaque_spans(body: bytes, content_type: str | None, depth: int = 0) -> list[tuple[int, int]]:
    """Spans of a body that no parser hands over as an image and no decoder reads as one:
    multipart part contents (or a whole body no server splits into parts) whose first bytes are no image, no base64 image, no JSON and no multipart.
    Bytes of an image further in (a broken delimiter turned a file part into the tail of a
    text field) are data there, not an image."""
    split = parts(body, content_type)
    if not split:  # no server splits it: its type names no boundary, or one it never uses
        return [] if _presented(body) else [(0, len(body))]
    spans = []
    for headers, start, end in split:
        content = body[start:end]
        if depth < MAX_DEPTH and _boundary(_header(headers, "content-type")):
            spans += [(start + a, start + b) for a, b in opaque_spans(content, _header(headers, "content-type"), depth + 1)]
        elif not _presented(content):
            spans.append((start, end))
    return spans


def _presented(content: bytes) -> bool:
    """Does a server hand this over as something that is, or holds, an image?"""
    return is_image(content) or bool(_in_text(content)) or _is_json(content)


def _is_json(content: bytes) -> bool:
    try:
        json.loads(content, strict=False)
        return True
    except (ValueError, RecursionError):
        return False


def _split_part(body: bytes, start: int, end: int) -> tuple[bytes, int]:
    """(the part's headers, where its content starts)."""
    if body.startswith((b"\r\n", b"\n"), start):  # no headers
        return b"", start + (2 if body.startswith(b"\r\n", start) else 1)
    blank = re.compile(rb"\r\n\r\n|\n\n|\r\r").search(body, start, end)
    if blank is None:
        return body[start:end], end
    return body[start : blank.start()], blank.end()


def _header(headers: bytes, name: str) -> str:
    for line in re.split(rb"\r\n|\n|\r", headers):
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name.encode():
            return value.strip().decode("latin-1")
    return ""
