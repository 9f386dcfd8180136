"""PDF: every stream, after its filters. An image XObject is an image whatever its encoding
(a DCTDecode stream is a JPEG, a FlateDecode one is raw pixels); any other stream (page
contents, embedded files, XMP) is searched as a stream of its own. No PDF library: the
stream dictionaries are plain text in any unencrypted PDF (object streams cannot hold
streams), so a regex over `obj … stream … endstream` with zlib is enough.
"""

import base64
import binascii
import re

from .context import ScanContext, Where
from .inflate import RAW_DEFLATE, ZLIB, inflate

_STREAM_KEYWORD = re.compile(rb"(?<!end)stream\r?\n")
_OBJECT_HEADER = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_DICTIONARY_REACH = 4096  # how far before `stream` its object header is looked for
_DIRECT_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_END_AFTER_LENGTH = re.compile(rb"\s*endstream")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+)")
_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_IMAGE_SUBTYPE = re.compile(rb"/Subtype\s*/Image\b")
_ENCRYPT = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")
_ABBREVIATIONS = {b"Fl": b"FlateDecode", b"AHx": b"ASCIIHexDecode", b"A85": b"ASCII85Decode", b"DCT": b"DCTDecode"}
# Filters whose output is an image file Veil's signatures recognise: decoding stops before them.
_IMAGE_CODECS = frozenset({b"DCTDecode", b"JPXDecode"})


def open_pdf(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int:
    """Open every stream of the PDF starting at `at`; returns the offset after the last."""
    here = where + (f"pdf at byte {at:,}",)
    images_before = scan.images_found
    encrypted = _ENCRYPT.search(stream, at) is not None
    if encrypted:
        scan.opaque("pdf", here, "the PDF is encrypted: its streams cannot be read")
    pos = at
    while (keyword := _STREAM_KEYWORD.search(stream, pos)) is not None:
        if scan.out_of_time(here):
            break
        header = _object_header(stream, at, keyword.start())
        if header is None:  # the word "stream" in text, not a stream
            pos = keyword.end()
            continue
        dictionary = stream[header.end() : keyword.start()]
        end = _stream_end(stream, keyword.end(), dictionary)
        if not scan.count_member(here):
            break
        label = f"object {int(header.group(1))} stream"
        if not encrypted:
            _open_stream(scan, stream[keyword.end() : end], dictionary, here + (label,), depth)
        pos = max(end, keyword.end())
    scan.document("pdf", here, scan.images_found - images_before)
    return pos


def _object_header(stream: bytes, floor: int, keyword_start: int) -> re.Match | None:
    window_start = max(floor, keyword_start - _DICTIONARY_REACH)
    headers = list(_OBJECT_HEADER.finditer(stream, window_start, keyword_start))
    if not headers or b"<<" not in stream[headers[-1].end() : keyword_start]:
        return None
    return headers[-1]


def _stream_end(stream: bytes, data_start: int, dictionary: bytes) -> int:
    """Where the stream's data ends: its direct /Length when `endstream` follows it there,
    else the next `endstream` (an indirect or wrong length)."""
    declared = _DIRECT_LENGTH.search(dictionary)
    if declared is not None:
        end = data_start + int(declared.group(1))
        if _END_AFTER_LENGTH.match(stream, end):
            return end
    found = stream.find(b"endstream", data_start)
    if found < 0:
        return len(stream)
    if stream[found - 2 : found] == b"\r\n":
        return found - 2
    return found - 1 if stream[found - 1 : found] in (b"\n", b"\r") else found


def _filters(dictionary: bytes) -> list[bytes]:
    declared = _FILTER.search(dictionary)
    if declared is None:
        return []
    return [_ABBREVIATIONS.get(name, name) for name in _NAME.findall(declared.group(1))]


def _open_stream(scan: ScanContext, data: bytes, dictionary: bytes, here: Where, depth: int) -> None:
    is_image = _IMAGE_SUBTYPE.search(dictionary) is not None
    decoded, rest = _apply_filters(scan, data, _filters(dictionary), here)
    if decoded is None:
        return
    if rest and rest[0] in _IMAGE_CODECS:
        scan.descend(decoded, here, depth)  # a JPEG or JPEG 2000 file: its own signature finds it
    elif is_image:
        # Raw pixels (or a codec Veil does not decode): an image all the same.
        scan.image("pdf-image", decoded, 0, len(decoded), here)
    elif rest:
        scan.opaque("pdf", here, f"the stream filter /{rest[0].decode('latin-1')} is not one Veil decodes")
    else:
        scan.descend(decoded, here, depth)


def _apply_filters(scan: ScanContext, data: bytes, filters: list[bytes], here: Where) -> tuple[bytes | None, list[bytes]]:
    """Apply the filters Veil knows, in order; returns the bytes and the filters left."""
    for index, name in enumerate(filters):
        decoder = _DECODERS.get(name)
        if decoder is None:
            return data, filters[index:]
        data, problem = decoder(scan, data)
        if problem:
            scan.opaque("pdf", here, f"/{name.decode('latin-1')}: {problem}")
            if not data:
                return None, []
    return data, []


def _flate(scan: ScanContext, data: bytes) -> tuple[bytes, str | None]:
    inflated = inflate(scan, data, ZLIB)
    if inflated.problem and not inflated.data:  # some writers omit the zlib header
        inflated = inflate(scan, data, RAW_DEFLATE)
    return inflated.data, inflated.problem


def _ascii_hex(scan: ScanContext, data: bytes) -> tuple[bytes, str | None]:
    digits = bytes(data).split(b">", 1)[0].translate(None, b" \t\r\n\f\x00")
    try:
        return binascii.unhexlify(digits + b"0" * (len(digits) % 2)), None
    except binascii.Error as error:
        return b"", str(error)


def _ascii85(scan: ScanContext, data: bytes) -> tuple[bytes, str | None]:
    text = bytes(data).split(b"~>", 1)[0].removeprefix(b"<~")
    try:
        return base64.a85decode(text, ignorechars=b" \t\r\n\f\x00"), None
    except ValueError as error:
        return b"", str(error)


_DECODERS = {b"FlateDecode": _flate, b"ASCIIHexDecode": _ascii_hex, b"ASCII85Decode": _ascii85}
