"""Raw bytes written as text escapes: percent-encoding (`%FF%D8%FF…`), quoted-printable
(`=FF=D8=FF…`, soft line breaks) and JSON string escapes (`\\u00ff\\u00d8…`, or a binary
string whose high bytes JSON.stringify wrote as UTF-8). Base64 with a few escapes inside is
base64_runs' business; here a region must be dense with escapes of bytes base64 never
needs, which ordinary text and URLs are not.
"""

import binascii
import re
import urllib.parse

from .context import ScanContext, Where

# At least 16 escapes, with any literal characters between them but none that ends a value
# (whitespace, quotes, a form's '&'): an image's bytes run on through quantisation tables and
# EXIF strings that stay literal for dozens of characters.
_MIN_ESCAPES = 16

_PERCENT = rb"%[0-9A-Fa-f]{2}"
_PERCENT_REGION = re.compile(_PERCENT + rb"(?:[^%\s\"'<>&=]*" + _PERCENT + rb"){%d,}" % (_MIN_ESCAPES - 1))
_PERCENT_NOT_BASE64 = re.compile(rb"%(?!2[bBfF0]|3[dD]|0[aAdD])[0-9A-Fa-f]{2}")

# Quoted-printable leaves every printable byte and the line breaks of text literal (b2a_qp's
# default): only a '=' that starts no escape ends a region.
_QP = rb"=(?:[0-9A-Fa-f]{2}|\r?\n)"
_QP_REGION = re.compile(_QP + rb"(?:[^=]*" + _QP + rb"){%d,}" % (_MIN_ESCAPES - 1))
_QP_NOT_BASE64 = re.compile(rb"=(?!3[dD])[0-9A-Fa-f]{2}")

_JSON = rb'\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt])'
_JSON_REGION = re.compile(_JSON + rb'(?:[^"\\]*' + _JSON + rb"){%d,}" % (_MIN_ESCAPES - 1))
_JSON_NOT_BASE64 = re.compile(rb"\\u(?!002[bBfF]|003[dD]|000[aAdD])[0-9a-fA-F]{4}|\\[bft\"\\]")
_STRING_REACH = 4096  # how far back a region's opening quote is looked for


def search(scan: ScanContext, stream: bytes, where: Where, depth: int) -> None:
    if stream.count(b"%") >= _MIN_ESCAPES:
        _decode_regions(scan, stream, _PERCENT_REGION, _PERCENT_NOT_BASE64, urllib.parse.unquote_to_bytes, "percent-encoded", where, depth)
    if stream.count(b"=") >= _MIN_ESCAPES:
        _decode_regions(scan, stream, _QP_REGION, _QP_NOT_BASE64, binascii.a2b_qp, "quoted-printable", where, depth)
    if stream.count(b"\\") >= _MIN_ESCAPES:
        _json_strings(scan, stream, where, depth)


def _decode_regions(scan, stream, region_pattern, not_base64, decode, name, where, depth) -> None:
    for region in region_pattern.finditer(stream):
        if scan.out_of_time(where):
            return
        if not_base64.search(region.group()):
            scan.descend(decode(region.group()), where + (f"{name} at byte {region.start():,}",), depth)


def _json_strings(scan: ScanContext, stream: bytes, where: Where, depth: int) -> None:
    for region in _JSON_REGION.finditer(stream):
        if scan.out_of_time(where):
            return
        if not _JSON_NOT_BASE64.search(region.group()):
            continue
        # Characters before the first escape and after the last belong to the value too
        # (JSON.stringify leaves 0xFF as a literal 'ÿ'): take the string to its quotes when near.
        quote = stream.rfind(b'"', max(0, region.start() - _STRING_REACH), region.start())
        start = quote + 1 if quote >= 0 else region.start()
        closing = stream.find(b'"', region.end(), region.end() + _STRING_REACH)
        value = json_string_bytes(stream[start : closing if closing >= 0 else region.end()])
        scan.descend(value, where + (f"JSON string at byte {start:,}",), depth)


_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SHORT = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def json_string_bytes(raw: bytes) -> bytes:
    """The bytes a JSON string's contents stand for. A value with no character above U+00FF
    is a binary string (one character per byte, as JavaScript writes one): its Latin-1 bytes;
    otherwise its UTF-8."""
    text = _ESCAPE.sub(lambda e: _SHORT[e.group(2)] if e.group(1) is None else chr(int(e.group(1), 16)), raw.decode("utf-8", "replace"))
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
