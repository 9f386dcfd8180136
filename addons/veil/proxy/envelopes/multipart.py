"""Images in multipart bodies (RFC 7578 form-data, and any multipart/* per RFC 2046).

mitmproxy's own multipart parser is not byte-exact (it drops CR/LF inside file bytes
and rewrites part headers), so this one only locates parts and never rebuilds them:
the preamble, every delimiter, every part header and the epilogue stay as they were.

A part is an image when its content starts with image magic, whatever its declared type
(OpenAI Uploads sends images as application/octet-stream named "upload"). A part may also
carry an image as text: a data URL or base64 in a form field, or a part sent with
`Content-Transfer-Encoding: base64`; and a JSON part may hold base64 images of its own.
"""

import binascii
import re
import urllib.parse
from dataclasses import dataclass

from . import json_base64, json_lines
from .base import EnvelopeError, ImageSlot, identity, nested
from .magic import HEAD_BYTES, looks_like_upload

NAME = "multipart"

# RFC 2046 bchars; a boundary is 1-70 of them and does not end with a space.
_BOUNDARY_CHARS = rb"0-9A-Za-z'()+_,\-./:=? "
# A body that opens with a delimiter line followed by a header line (or the blank line
# of a part without headers) is multipart whatever its Content-Type says.
_LEADING_DELIMITER = re.compile(rb"--([" + _BOUNDARY_CHARS + rb"]{0,69}[" + _BOUNDARY_CHARS[:-1] + rb"])[ \t]*\r\n(?:\r\n|[!-9;-~]+:)")
_TRANSPORT_PADDING_THEN_CRLF = re.compile(rb"[ \t]*\r\n")
_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


MAX_NESTING = 8
# The first bytes of every signature magic.looks_like_upload knows (ISO media is found by
# its "ftyp", four bytes in).
_IMAGE_START = re.compile(rb"%PDF-|PK\x03\x04|\xd0\xcf\x11\xe0|\xff\xd8\xff|\x89PNG|GIF8|RIFF|II[*+]\x00|MM\x00[*+]|BM|ftyp|P[1-6]|\x00\x00\x00\x0c|\xff\x4f\xff")
# 96 bytes of base64: less than any image with metadata, more than a token in prose.
_BASE64_DATA = re.compile(rb"[A-Za-z0-9+/_-]{128}")
# JSON escapes a serialiser may put in base64 text; any other escape just ends a run.
_JSON_ESCAPE = re.compile(rb"\\(?:/|u002[fFbB])")
_LINE_BREAK = re.compile(rb"\r|\n|\\r|\\n")  # raw, or escaped in a JSON string
_JSON_ESCAPED = {rb"\/": b"/", rb"\u002f": b"/", rb"\u002F": b"/", rb"\u002b": b"+", rb"\u002B": b"+"}


@dataclass(frozen=True)
class Part:
    index: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    name: str | None
    filename: str | None
    content_type: str | None
    content_start: int
    content_end: int


def find_images(body: bytes, content_type: str | None, depth: int = 0) -> list[ImageSlot] | None:
    """Every image in a multipart body; None when the body is not multipart. `depth`
    counts the multipart parts this body is nested in."""
    boundary = _boundary(body, content_type)
    if boundary is None:
        return None
    parts = parse_parts(body, boundary)
    _refuse_hidden_content(body, boundary, parts)
    slots: list[ImageSlot] = []
    for part, location in _locate(parts):
        slots.extend(_slots_in_part(body, part, location, depth))
    return slots


def parse_parts(body: bytes, boundary: bytes) -> list[Part]:
    """The parts of a multipart body, located by byte offsets. Raises EnvelopeError when
    the body does not follow RFC 2046 (no delimiter, unterminated headers, no close)."""
    dash_boundary = b"--" + boundary
    delimiter = b"\r\n" + dash_boundary
    if _is_delimiter_line(body, 0, dash_boundary):
        at = 0
    else:  # a preamble first: the CRLF before the first delimiter belongs to the delimiter
        at = _find_delimiter(body, delimiter, 0)
        if at < 0:
            raise EnvelopeError("the multipart body never uses the boundary it declares")
        at += 2
    parts: list[Part] = []
    while True:
        after_boundary = at + len(dash_boundary)
        if body.startswith(b"--", after_boundary):
            return parts  # close delimiter: what follows is the epilogue
        headers_start = _TRANSPORT_PADDING_THEN_CRLF.match(body, after_boundary).end()
        headers, content_start = _read_headers(body, headers_start, delimiter, len(parts))
        content_end = _find_delimiter(body, delimiter, content_start)
        if content_end < 0:
            raise EnvelopeError(f"the multipart body is truncated: part {len(parts) + 1} has no closing boundary")
        parts.append(_part(len(parts), headers, content_start, content_end))
        at = content_end + 2


def _refuse_hidden_content(body: bytes, boundary: bytes, parts: list[Part]) -> None:
    """Refuse a body in which another parser would find content Veil does not clean.

    A line that is a delimiter in all but its line break (a bare LF or CR, or stray bytes
    before it) is where Werkzeug, Go and other lenient parsers start a new part, while Veil
    reads on: the part they hand over would never have been cleaned. And the preamble and
    the epilogue belong to no part: they hold a line of text at most, yet travel to the
    service; an image there (a broken first delimiter turns a file part into preamble) is
    refused too."""
    dash_boundary = b"--" + boundary
    first = 0 if _is_delimiter_line(body, 0, dash_boundary) else _find_delimiter(body, b"\r\n" + dash_boundary, 0) + 2
    close = parts[-1].content_end + 2 if parts else first
    delimiters = {first, close} | {part.content_end + 2 for part in parts}
    near_miss = re.compile(re.escape(dash_boundary) + rb"(?:--|[ \t]*[\r\n])")
    for found in near_miss.finditer(body, 0, close):
        if found.start() not in delimiters:
            raise EnvelopeError(
                f"the multipart body has a boundary line at byte {found.start()} that is not a proper "
                "delimiter (a bare line break or stray bytes before it), so its parts are ambiguous"
            )
    preamble_end = first - 2 if first else 0
    epilogue_start = close + len(dash_boundary) + 2
    for name, text in (("preamble", body[:preamble_end]), ("epilogue", body[epilogue_start:])):
        if _holds_image(text):
            raise EnvelopeError(f"the multipart body holds an image, or base64 data that may be one, in its {name}, outside every part")


def _holds_image(text: bytes) -> bool:
    """Image magic anywhere in `text`, or a run of base64 long enough to be an image (lines
    joined, JSON escapes of slashes and line breaks undone). Decoding it would need its
    start, which a header line or a word before it hides once lines are joined."""
    for found in _IMAGE_START.finditer(text):
        at = found.start() - 4 if found.group() == b"ftyp" else found.start()
        if at >= 0 and looks_like_upload(text[at : at + HEAD_BYTES]):
            return True
    unescaped = _JSON_ESCAPE.sub(lambda escape: _JSON_ESCAPED[escape.group()], text)
    return _BASE64_DATA.search(_LINE_BREAK.sub(b"", unescaped)) is not None


def _is_delimiter_line(body: bytes, at: int, dash_boundary: bytes) -> bool:
    """`--boundary` at `at`, then `--` (close) or optional whitespace and CRLF. Anything
    else is content that merely starts like the boundary."""
    if not body.startswith(dash_boundary, at):
        return False
    after = at + len(dash_boundary)
    return body.startswith(b"--", after) or _TRANSPORT_PADDING_THEN_CRLF.match(body, after) is not None


def _find_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """Offset of the next real `\\r\\n--boundary` delimiter at or after `start`, or -1."""
    while (found := body.find(delimiter, start)) >= 0:
        if _is_delimiter_line(body, found + 2, delimiter[2:]):
            return found
        start = found + 1
    return -1


def _read_headers(body: bytes, start: int, delimiter: bytes, index: int) -> tuple[dict[str, str], int]:
    """The part's headers and where its content starts (after the blank line)."""
    if body.startswith(b"\r\n", start):  # no headers at all
        return {}, start + 2
    end = body.find(b"\r\n\r\n", start)
    if end < 0 or body.find(delimiter, start, end) >= 0:  # a blank line of a later part does not count
        raise EnvelopeError(f"the multipart body is truncated: the headers of part {index + 1} never end")
    headers, repeated = _parse_header_block(body[start:end].decode("utf-8", "replace"))
    if repeated & _DECIDING_HEADERS:
        # Which one counts differs between servers: one may read a multipart/mixed part
        # (with images inside) where Veil read text/plain.
        names = ", ".join(sorted(repeated & _DECIDING_HEADERS))
        raise EnvelopeError(f"part {index + 1} of the multipart body repeats its {names} header, which servers resolve differently")
    return headers, end + 4


_DECIDING_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})


def _parse_header_block(block: str) -> tuple[dict[str, str], set[str]]:
    """The headers (the last of each name) and the names given more than once."""
    unfolded = re.sub(r"\r\n(?=[ \t])", "", block)  # obsolete line folding
    headers: dict[str, str] = {}
    repeated: set[str] = set()
    for line in unfolded.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip().lower()
            if name in headers:
                repeated.add(name)
            headers[name] = value.strip()
    return headers, repeated


def _part(index: int, headers: dict[str, str], content_start: int, content_end: int) -> Part:
    disposition = parameters(headers.get("content-disposition", ""), refuse_repeats=True)
    parameters(headers.get("content-type", ""), refuse_repeats=True)
    filename = disposition.get("filename*") or disposition.get("filename")
    return Part(index, headers, disposition.get("name"), filename, headers.get("content-type"), content_start, content_end)


def parameters(header_value: str, refuse_repeats: bool = False) -> dict[str, str]:
    """`form-data; name="a \\"b\\""; filename*=UTF-8''%C3%A9.jpg` → {name, filename*}, with
    quoted strings unescaped and RFC 5987 extended values decoded. With `refuse_repeats`, a
    parameter given twice is an EnvelopeError: Python's email takes the first, most other
    parsers the last, so Veil and the server would read different boundaries or names."""
    found: dict[str, str] = {}
    for match in _PARAMETER.finditer(header_value):
        key, quoted, token = match.group(1).lower(), match.group(2), match.group(3)
        value = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else token.strip()
        if key.endswith("*"):
            value = _decode_extended_value(value)
        if refuse_repeats and key in found:
            raise EnvelopeError(f"the multipart body gives the {key!r} parameter twice, which servers resolve differently")
        found[key] = value
    return found


def _decode_extended_value(value: str) -> str:
    """RFC 5987: charset'language'percent-encoded."""
    charset, quote, rest = value.partition("'")
    if not quote:
        return value
    encoded = rest.partition("'")[2]
    try:
        return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return urllib.parse.unquote(encoded, errors="replace")


# ---------------------------------------------------------------------------------------
# Which boundary, which parts are images.


def _boundary(body: bytes, content_type: str | None) -> bytes | None:
    """The boundary the service will split the body on: the declared one, and only it. A
    body that opens with another delimiter is refused: Veil and the server would disagree
    about where the parts are. A body labelled as something else that plainly opens with a
    delimiter is still read as multipart (a lenient server may sniff it)."""
    declared = _declared_boundary(content_type)
    opening = _LEADING_DELIMITER.match(body)
    sniffed = opening.group(1) if opening else None
    if _is_multipart(content_type):
        if declared is None:
            raise EnvelopeError("the request says it is multipart but names no boundary")
        if sniffed is not None and sniffed != declared:
            raise EnvelopeError("the multipart body opens with a delimiter other than the boundary its Content-Type declares")
        return declared
    return sniffed


def _is_multipart(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower().startswith("multipart/")


def _declared_boundary(content_type: str | None) -> bytes | None:
    if not _is_multipart(content_type):
        return None
    _, semicolon, rest = content_type.partition(";")
    boundary = parameters(semicolon + rest, refuse_repeats=True).get("boundary")
    if not boundary:
        return None
    return boundary.encode("utf-8", "replace")


def _locate(parts: list[Part]) -> list[tuple[Part, str]]:
    """Each part's location: its field name, with `#n` from the second use of a name on
    (`image[]`, `image[]#1`); unnamed parts (multipart/related) are `part#index`."""
    seen: dict[str, int] = {}
    located = []
    for part in parts:
        if part.name is None:
            located.append((part, f"part#{part.index}"))
            continue
        count = seen.get(part.name, 0)
        seen[part.name] = count + 1
        located.append((part, part.name if count == 0 else f"{part.name}#{count}"))
    return located


# Transfer encodings that leave the bytes as they are; base64 parts are read as text below.
_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary", "base64"})


def _slots_in_part(body: bytes, part: Part, location: str, depth: int) -> list[ImageSlot]:
    start, end = part.content_start, part.content_end
    transfer_encoding = part.headers.get("content-transfer-encoding", "").strip().lower()
    if transfer_encoding == "quoted-printable":
        return _quoted_printable_slots(body, part, location)
    if transfer_encoding not in _IDENTITY_ENCODINGS:
        raise EnvelopeError(f"part {location!r} uses the transfer encoding {transfer_encoding!r}, which Veil does not decode")
    if looks_like_upload(body[start : min(end, start + HEAD_BYTES)]):
        return [ImageSlot(location, (start, end), body[start:end], part.content_type, part.filename, identity)]
    head = body[start : min(end, start + 512)]
    if _is_multipart(part.content_type) or _LEADING_DELIMITER.match(head):
        # A multipart part inside the form: RFC 2388's multipart/mixed for several files,
        # which Apache Commons FileUpload and others still unpack.
        if depth >= MAX_NESTING:
            raise EnvelopeError(f"the multipart body nests parts deeper than {MAX_NESTING} levels, so Veil does not walk it")
        inner = find_images(body[start:end], part.content_type, depth + 1) or []
        return [nested(slot, location, start) for slot in inner]
    if head.lstrip()[:1] in (b"{", b"["):  # a JSON part (a request's metadata) or JSON Lines (a batch file)
        content = body[start:end]
        found = json_base64.find_images(content, part.content_type)
        if found is None:
            found = json_lines.find_images(content, part.content_type) or []
        return [nested(slot, location, start) for slot in found]
    if not json_base64.looks_like_text_image(head):
        return []
    content = body[start:end]
    as_text = json_base64.find_text_image(content, f"multipart part {location!r}")
    if as_text is None:
        return []
    prefix = content[: as_text.prefix_length]
    declared_type = as_text.declared_type or part.content_type
    encode = _TextEncoder(prefix, as_text.style)
    return [ImageSlot(location, (start, end), as_text.image, declared_type, part.filename, encode)]


def _quoted_printable_slots(body: bytes, part: Part, location: str) -> list[ImageSlot]:
    """Some server stacks decode `Content-Transfer-Encoding: quoted-printable`: an image
    sent that way is cleaned and written back quoted-printable."""
    decoded = binascii.a2b_qp(body[part.content_start : part.content_end])
    if not looks_like_upload(decoded[:HEAD_BYTES]):
        return []
    span = (part.content_start, part.content_end)
    return [ImageSlot(location, span, decoded, part.content_type, part.filename, _quoted_printable)]


def _quoted_printable(image: bytes) -> bytes:
    # Soft line breaks as CRLF, the line break of the body around it.
    return binascii.b2a_qp(image, quotetabs=True, istext=False).replace(b"=\n", b"=\r\n")


@dataclass(frozen=True)
class _TextEncoder:
    """Writes an image back as the part held it: data-URL prefix, then base64 in the same style."""

    prefix: bytes
    style: json_base64.Base64Style

    def __call__(self, image: bytes) -> bytes:
        return self.prefix + json_base64.encode_base64(image, self.style)


def field_content(body: bytes, content_type: str | None, name: str) -> bytes | None:
    """The content of the first part named `name`, or None (not multipart, no such part)."""
    boundary = _boundary(body, content_type)
    if boundary is None:
        return None
    try:
        parts = parse_parts(body, boundary)
    except EnvelopeError:
        return None
    part = next((part for part in parts if part.name == name), None)
    return None if part is None else body[part.content_start : part.content_end]
