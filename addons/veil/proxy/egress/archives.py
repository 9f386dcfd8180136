"""Archives opened, not trusted: ZIP (and the DOCX/XLSX/PPTX/ODF/EPUB documents built on it),
gzip and tar, found at any offset. Each member is searched as a stream of its own; what
cannot be opened (encrypted, an unknown compression, damaged, over a limit) is reported as
opaque with the reason, never skipped in silence.

ZIP is walked by its local headers, in order, as a streaming reader does, not by the central
directory: a member the directory leaves out is still unpacked by some readers, and the
local headers are what sits in the bytes.
"""

import struct

from .context import ScanContext, Where
from .inflate import (
    GZIP,
    RAW_DEFLATE,
    ZLIB,
    Inflated,
    decompress_bzip2,
    decompress_xz,
    inflate,
)

# A hit shorter than this was never a container worth a report: a random "PK\3\4" or
# gzip magic in other data decodes to a few bytes of garbage at most (and an image
# needs more, see base64_runs.MIN_BASE64_CHARS).
_MIN_OUTPUT = 64

# ---------------------------------------------------------------------------------------
# ZIP

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_NEXT_RECORD = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x07\x08")
_ENCRYPTED, _HAS_DESCRIPTOR, _UTF8_NAME = 0x1, 0x8, 0x800
_STORED, _DEFLATED = 0, 8
_UNKNOWN_SIZE = 0xFFFFFFFF  # ZIP64: the real size is in an extra field
_NAME_CONTROL_BYTES = bytes(range(0x20))
_DOCUMENT_MARKERS = (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx"))
_MIMETYPES = ((b"application/vnd.oasis.opendocument", "odf"), (b"application/epub+zip", "epub"))


def open_zip(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int | None:
    """Walk the archive whose first local header is at `at`; returns the end of the last
    member walked (the search goes on from there), or None when this was no archive."""
    here = where + (f"zip at byte {at:,}",)
    images_before = scan.images_found
    names: list[str] = []
    mimetype = b""
    pos = at
    while (header := _local_header(stream, pos)) is not None:
        flags, method, compressed_size, name, data_start = header
        if not scan.count_member(here):
            break
        names.append(name)
        end = _open_member(scan, stream, data_start, flags, method, compressed_size, here + (f"zip member {name}",), depth)
        if name == "mimetype" and method == _STORED and end is not None:
            mimetype = stream[data_start:end]
        if end is None:  # the member's end is unknown: what follows cannot be located
            break
        pos = _after_descriptor(stream, end, flags)
    if not names:
        return None
    scan.document(_document_format(names, mimetype), here, scan.images_found - images_before)
    return pos


def _local_header(stream: bytes, pos: int) -> tuple[int, int, int, str, int] | None:
    """(flags, method, compressed size, name, data start) of a plausible local header."""
    if not stream.startswith(_LOCAL_SIGNATURE, pos) or pos + _LOCAL_HEADER.size > len(stream):
        return None
    _, version, flags, method, _, _, _, compressed_size, _, name_length, extra_length = _LOCAL_HEADER.unpack_from(stream, pos)
    data_start = pos + _LOCAL_HEADER.size + name_length + extra_length
    if version > 0xFF or not 0 < name_length <= 4096 or data_start > len(stream):
        return None  # random bytes that start with "PK\3\4"
    raw_name = stream[pos + _LOCAL_HEADER.size : pos + _LOCAL_HEADER.size + name_length]
    if raw_name.translate(None, _NAME_CONTROL_BYTES) != raw_name:
        return None  # a real member name has no control characters; random bytes soon do
    name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437", "replace")
    return flags, method, compressed_size, name, data_start


def _open_member(scan, stream, data_start, flags, method, compressed_size, here, depth) -> int | None:
    """Search one member; returns where its data ends, or None when that is unknown."""
    size_known = not (flags & _HAS_DESCRIPTOR and compressed_size == 0) and compressed_size != _UNKNOWN_SIZE
    known_end = data_start + compressed_size if size_known else None
    if flags & _ENCRYPTED:
        scan.opaque("zip", here, "the member is encrypted")
        return known_end
    if method == _STORED:
        end = known_end if known_end is not None else _next_record(stream, data_start)
        scan.descend(stream[data_start:end], here, depth)
        return end
    if method == _DEFLATED:
        limit = known_end if known_end is not None else len(stream)
        inflated = inflate(scan, memoryview(stream)[data_start:limit], RAW_DEFLATE)
        if inflated.problem:
            scan.opaque("zip", here, inflated.problem)
        scan.descend(inflated.data, here, depth)
        return known_end if known_end is not None else (data_start + inflated.consumed if inflated.complete else None)
    scan.opaque("zip", here, f"compression method {method} is not one Veil opens")
    return known_end


def _next_record(stream: bytes, start: int) -> int:
    """A stored member of unknown size ends where the next ZIP record starts."""
    found = [at for at in (stream.find(signature, start) for signature in _NEXT_RECORD) if at >= 0]
    return min(found, default=len(stream))


def _after_descriptor(stream: bytes, end: int, flags: int) -> int:
    """Skip the data descriptor (CRC and sizes, optionally signed, 32- or 64-bit sizes)."""
    if not flags & _HAS_DESCRIPTOR:
        return end
    start = end + 4 if stream.startswith(_DESCRIPTOR_SIGNATURE, end) else end
    for length in (12, 20):
        if stream.startswith(_NEXT_RECORD, start + length):
            return start + length
    return start + 12


def _document_format(names: list[str], mimetype: bytes) -> str:
    present = set(names)
    for marker, document_format in _DOCUMENT_MARKERS:
        if marker in present:
            return document_format
    for prefix, document_format in _MIMETYPES:
        if mimetype.startswith(prefix):
            return document_format
    return "zip"


# ---------------------------------------------------------------------------------------
# gzip

_GZIP_OS_VALUES = frozenset(range(14)) | {255}


def open_gzip(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int | None:
    """Every member of the gzip stream at `at`, decoded as one (as gunzip does)."""
    if not _plausible_gzip_header(stream, at):
        return None
    here = where + (f"gzip at byte {at:,}",)
    images_before = scan.images_found
    pieces, pos, problem = [], at, None
    while _plausible_gzip_header(stream, pos) and problem is None:
        inflated = inflate(scan, memoryview(stream)[pos:], GZIP)
        pieces.append(inflated.data)
        problem = inflated.problem
        pos += inflated.consumed
    decoded = b"".join(pieces)
    if problem and len(decoded) < _MIN_OUTPUT:
        return None  # gzip magic by chance, not a stream
    if problem:
        scan.opaque("gzip", here, problem)
    scan.descend(decoded, here, depth)
    scan.document("gzip", here, scan.images_found - images_before)
    return pos


def _plausible_gzip_header(stream: bytes, at: int) -> bool:
    """Magic, deflate, no reserved flag bits, a known extra-flags value and OS byte."""
    header = stream[at : at + 10]
    return (
        len(header) == 10
        and header[:3] == b"\x1f\x8b\x08"
        and not header[3] & 0xE0
        and header[8] in (0, 2, 4)
        and header[9] in _GZIP_OS_VALUES
    )


# ---------------------------------------------------------------------------------------
# Other compressed streams: bzip2 and xz anywhere (their signatures are long), zlib only at
# the start of a stream (its two-byte header is too short to trust anywhere else; "compress,
# then base64" puts it exactly there).


def open_bzip2(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int | None:
    return _open_compressed(scan, stream, at, where, depth, "bzip2", decompress_bzip2)


def open_xz(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int | None:
    return _open_compressed(scan, stream, at, where, depth, "xz", decompress_xz)


_ZLIB_REACH = 8


def _looks_like_zlib(data: bytes) -> bool:
    """A zlib header: deflate, a window of at most 32 KiB, no preset dictionary, and the
    header's own checksum."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and not data[1] & 0x20 and int.from_bytes(data[:2]) % 31 == 0


def open_zlib_at_start(scan: ScanContext, stream: bytes, where: Where, depth: int) -> None:
    """A zlib stream that is the whole stream or starts it, give or take the few bytes that
    stray characters glued in front of its base64 decode to."""
    for at in zlib_headers_near_start(stream):
        if _open_compressed(scan, stream, at, where, depth, "zlib", _inflate_zlib) is not None:
            return


def zlib_headers_near_start(data: bytes) -> list[int]:
    # CM 8 is the low nibble of the first byte: most offsets fail on that alone.
    return [at for at, byte in enumerate(data[:_ZLIB_REACH]) if byte & 0x0F == 8 and _looks_like_zlib(data[at : at + 2])]


def _inflate_zlib(scan: ScanContext, data: memoryview) -> Inflated:
    return inflate(scan, data, ZLIB)


def _open_compressed(scan, stream: bytes, at: int, where: Where, depth: int, name: str, decode) -> int | None:
    inflated: Inflated = decode(scan, memoryview(stream)[at:])
    if inflated.problem and len(inflated.data) < _MIN_OUTPUT:
        return None  # the magic by chance, not a stream
    here = (*where, f"{name} at byte {at:,}")
    images_before = scan.images_found
    if inflated.problem:
        scan.opaque(name, here, inflated.problem)
    scan.descend(inflated.data, here, depth)
    scan.document(name, here, scan.images_found - images_before)
    return at + inflated.consumed


# ---------------------------------------------------------------------------------------
# Archives Veil does not open: reported, so the caller's opaque_files policy decides.

UNOPENED = {
    b"7z\xbc\xaf\x27\x1c": ("7z", "7z archives are not opened by Veil"),
    b"Rar!\x1a\x07": ("rar", "RAR archives are not opened by Veil"),
    # Legacy Office files (.doc, .xls, .ppt, which embed pictures) and password-protected
    # DOCX/XLSX/PPTX, which are encrypted inside such a file.
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": (
        "ole",
        "OLE compound files (legacy or password-protected Office documents) are not opened by Veil",
    ),
}


def report_unopened(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> None:
    name, reason = next(found for magic, found in UNOPENED.items() if stream.startswith(magic, at))
    scan.opaque(name, (*where, f"{name} at byte {at:,}"), reason)


# ---------------------------------------------------------------------------------------
# tar (ustar and GNU): members are stored, one 512-byte header each.

_BLOCK = 512
_USTAR_OFFSET = 257
_REGULAR_FILES = (b"0", b"\x00", b"7")


def open_tar(scan: ScanContext, stream: bytes, at: int, where: Where, depth: int) -> int | None:
    """The archive whose first header is at `at` (its "ustar" magic is 257 bytes in)."""
    start = at
    if not _valid_tar_header(stream, start):
        return None
    here = where + (f"tar at byte {start:,}",)
    images_before = scan.images_found
    pos = start
    while _valid_tar_header(stream, pos):
        header = stream[pos : pos + _BLOCK]
        size = _octal(header[124:136])
        if size < 0:
            scan.opaque("tar", here, f"the header at byte {pos:,} has an unreadable size")
            break
        name = (header[345:500].rstrip(b"\x00") + b"/" if header[345:346] != b"\x00" else b"") + header[:100].rstrip(b"\x00")
        data_start = pos + _BLOCK
        if header[156:157] in _REGULAR_FILES:
            if not scan.count_member(here):
                break
            scan.descend(stream[data_start : data_start + size], here + (f"tar member {name.decode('utf-8', 'replace')}",), depth)
        pos = data_start + -(-size // _BLOCK) * _BLOCK
    scan.document("tar", here, scan.images_found - images_before)
    return pos


def _valid_tar_header(stream: bytes, pos: int) -> bool:
    header = stream[pos : pos + _BLOCK]
    if len(header) < _BLOCK or header[_USTAR_OFFSET : _USTAR_OFFSET + 5] != b"ustar":
        return False
    declared = _octal(header[148:156])
    return declared == sum(header[:148]) + 8 * ord(" ") + sum(header[156:])


def _octal(field: bytes) -> int:
    digits = field.strip(b"\x00 ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        return -1
