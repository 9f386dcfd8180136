"""Raw bytes written as text: percent-encoding (`%FF%D8%FF…`), quoted-printable
(`=FF=D8=FF…`, soft line breaks), JSON string escapes (`\\u00ff\\u00d8…`, or a binary
string whose high bytes JSON.stringify wrote as UTF-8), JSON arrays of byte values, and
UTF-16 text. Base64 with a few escapes inside is base64_runs' business; here a region must
be dense with escapes of bytes base64 never needs, which ordinary text and URLs are not.
"""

import binascii
import functools
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from .context import ScanContext, Where

# At least 16 escapes, with any literal characters between them but none that ends a value
# (whitespace, quotes, a form's '&'): an image's bytes run on through quantisation tables and
# EXIF strings that stay literal for dozens of characters.
_MIN_ESCAPES = 16
_REACH = 4096  # how far a region is widened over the literal characters around it


@dataclass(frozen=True)
class _Escaping:
    name: str
    escape: bytes  # one escape (a regex)
    literal: bytes  # one character the encoding leaves as it is (a regex character class)
    # An escape that marks a region worth decoding: one base64 text never needs (base64_runs
    # undoes those itself), nor ordinary text (decoding every prose string would double the
    # cost of a chat request).
    trigger: re.Pattern
    decode: Callable[[bytes], bytes]

    @functools.cached_property
    def region(self) -> re.Pattern:
        return re.compile(self.escape + rb"(?:" + self.literal + rb"*" + self.escape + rb"){%d,}" % (_MIN_ESCAPES - 1))

    @functools.cached_property
    def head(self) -> re.Pattern:
        return re.compile(self.literal + rb"+\Z")

    @functools.cached_property
    def tail(self) -> re.Pattern:
        return re.compile(self.literal + rb"*")


def json_string_bytes(raw: bytes) -> bytes:
    """The bytes a JSON string's contents stand for. A value with no character above U+00FF
    is a binary string (one character per byte, as JavaScript writes one): its Latin-1 bytes;
    otherwise its UTF-8."""
    text = _ESCAPE.sub(lambda e: _SHORT[e.group(2)] if e.group(1) is None else chr(int(e.group(1), 16)), raw.decode("utf-8", "replace"))
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SHORT = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _decode_quoted_printable(region: bytes) -> bytes:
    # A '=' before a backslash is a soft break written as a JSON escape (QP writes a literal
    # '=' as =3D): the text is a JSON string's, maybe nested, and its escapes (\" and \\ for
    # the '"' and '\' that QP leaves literal) are undone first.
    for _ in range(_MAX_JSON_NESTING):
        if b"=\\" not in region:
            break
        region = json_string_bytes(region)
    return binascii.a2b_qp(region)


_MAX_JSON_NESTING = 3


_ESCAPINGS = (
    _Escaping(
        "percent-encoded",
        rb"%[0-9A-Fa-f]{2}",
        rb"[^%\s\"'<>&=]",  # what percent-encoding leaves as it is, and not what ends a value
        re.compile(rb"%(?!2[bBfF0]|3[dD]|0[aAdD])[0-9A-Fa-f]{2}"),
        urllib.parse.unquote_to_bytes,
    ),
    # Quoted-printable leaves every printable byte literal (and the line breaks of text, with
    # b2a_qp's default): only a '=' that starts no escape ends a region. Soft line breaks count
    # as not base64: text that is QP only for its long lines (a JSON document) is found only
    # here, even if base64 wrapped this way is then decoded twice (and found once). Inside a
    # JSON string a soft line break is written "=\n" (an escaped line break; "=\\n" in a
    # string inside a string): that is one too.
    _Escaping(
        "quoted-printable",
        rb"=(?:[0-9A-Fa-f]{2}|\r?\n|(?:\\+r)?\\+n)",
        rb"[^=]",
        re.compile(rb"=(?!3[dD])(?:[0-9A-Fa-f]{2}|\r?\n|(?:\\+r)?\\+n)"),
        _decode_quoted_printable,
    ),
    # JSON strings: the characters before the first escape and after the last are the
    # string's too (JSON.stringify leaves 0xFF as a literal 'ÿ'), up to its quotes. Prose has
    # \n, \" and \u00e9 by the thousand; binary data has control characters (every image
    # format has NULs), which JSON must escape: those mark a string worth decoding.
    _Escaping(
        "JSON string",
        rb'\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt])',
        rb'[^"\\]',
        re.compile(rb"\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])|\\[bf]"),
        json_string_bytes,
    ),
)


def search(scan: ScanContext, stream: bytes, start: int, end: int, where: Where, depth: int) -> None:
    """Every escaped region and byte array in stream[start:end]."""
    for escaping in _ESCAPINGS:
        # Found at memchr-like speed (a literal prefix); most bodies have none at all.
        first = escaping.trigger.search(stream, start, end)
        if first is not None:
            _decode_regions(scan, stream, escaping, max(start, first.start() - _REACH), end, where, depth)
    _byte_arrays(scan, stream, start, end, where, depth)


# Bytes as a JSON array of numbers: Node's Buffer.toJSON() ({"type":"Buffer","data":[255,
# 216,…]}), Array.from(new Uint8Array(…)), Python's list(bytes). At least 60 of them, the
# smallest image worth finding; numbers of up to three digits (a value over 255 makes the
# array something else, found when it is parsed).
_BYTE_ARRAY = re.compile(rb"\[\s*\d{1,3}(?:\s*,\s*\d{1,3}){59,}\s*\]")
_NUMBER = re.compile(rb"\d+")


def _byte_arrays(scan: ScanContext, stream: bytes, start: int, end: int, where: Where, depth: int) -> None:
    for array in _BYTE_ARRAY.finditer(stream, start, end):
        if scan.out_of_time(where):
            return
        try:
            numbers = json.loads(array.group())  # C speed
        except ValueError:  # leading zeros, which JSON forbids and the regex lets through
            numbers = [int(number) for number in _NUMBER.findall(array.group())]
        if all(number <= 255 for number in numbers):
            scan.descend(bytes(numbers), (*where, f"byte array at byte {array.start():,}"), depth)


def _decode_regions(scan: ScanContext, stream: bytes, escaping: _Escaping, start: int, end: int, where: Where, depth: int) -> None:
    for region in escaping.region.finditer(stream, start, end):
        if scan.out_of_time(where):
            return
        if escaping.trigger.search(region.group()):
            start, end = _widened(stream, region, escaping)
            scan.descend(escaping.decode(stream[start:end]), where + (f"{escaping.name} at byte {start:,}",), depth)


def _widened(stream: bytes, region: re.Match, escaping: _Escaping) -> tuple[int, int]:
    """The region with the literal characters before its first escape and after its last:
    they are the value's first and last bytes ("GIF89a" and a GIF's ';' need no escape)."""
    head = escaping.head.search(stream, max(0, region.start() - _REACH), region.start())
    tail = escaping.tail.match(stream, region.end(), region.end() + _REACH)
    return (head.start() if head is not None else region.start()), tail.end()


# ---------------------------------------------------------------------------------------
# A whole stream in UTF-16 (a JSON body sent with charset=utf-16): every ASCII character,
# base64 included, has a NUL beside it, which no other layer reads through. Recognised by
# its byte-order mark, or by NULs at every other byte of its first characters.

_UTF16_PROBE = 64  # bytes: 32 characters


def search_utf16(scan: ScanContext, stream: bytes, where: Where, depth: int) -> None:
    codec = _utf16_codec(stream[:_UTF16_PROBE])
    if codec is not None:
        text = stream[: len(stream) // 2 * 2].decode(codec, "surrogatepass")
        scan.descend(text.encode("utf-8", "surrogatepass"), (*where, f"{codec} text"), depth)


def _utf16_codec(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the mark says which order, and is dropped
    if len(head) == _UTF16_PROBE and head[1::2] == bytes(_UTF16_PROBE // 2) and all(head[0::2]):
        return "utf-16-le"
    if len(head) == _UTF16_PROBE and head[0::2] == bytes(_UTF16_PROBE // 2) and all(head[1::2]):
        return "utf-16-be"
    return None
