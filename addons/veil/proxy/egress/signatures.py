"""Images and containers found by their magic bytes at any offset of a stream.

Each signature is its own compiled pattern with a literal prefix, which the regex engine
finds at memchr-like speed; one alternation of them all is ten times slower (it tries every
branch at every byte). The stream is searched window by window, so the pixel data of an
image found early (a 10 MB photo's JPEG scans) is never read. Each hit is confirmed by its
own reader: images.identify for images, the container modules for archives and PDFs.
"""

import heapq
import re

from . import archives, images, pdf
from .context import ScanContext, Where

# (kind, signature). Image signatures: the first bytes of every format veil.clean.formats
# and the envelopes' magic test know; images.identify confirms them, so they only need to
# be necessary. ISO media (HEIC/HEIF/AVIF) is found by its box type, 4 bytes in.
_FTYP_OFFSET = 4
_SIGNATURES = (
    ("image", rb"\xff\xd8\xff"),  # JPEG
    ("image", rb"\x89PNG\r\n\x1a\n"),
    ("image", rb"GIF8[79]a"),
    ("image", rb"RIFF[\s\S]{4}WEBP"),
    ("image", rb"II[*+]\x00"),  # TIFF (and BigTIFF), Intel byte order
    ("image", rb"MM\x00[*+]"),  # Motorola byte order
    ("image", rb"BM[\s\S]{12}[\x0c\x10\x28\x34\x38\x40\x6c\x7c]\x00\x00\x00"),  # BMP: a DIB header size behind "BM"
    ("image", rb"P[1-6][ \t\r\n#]"),  # PNM
    ("image", rb"\x00\x00\x00\x0c(?:jP  |JXL )\r\n\x87\n"),  # JPEG 2000, JPEG XL containers
    ("image", rb"\xff\x4f\xff\x51"),  # JPEG 2000 codestream
    ("ftyp", rb"ftyp"),
    ("zip", rb"PK\x03\x04"),
    ("gzip", rb"\x1f\x8b\x08"),
    ("pdf", rb"%PDF-"),
    ("tar", rb"ustar(?:\x00|  \x00)"),
)
_LONGEST = 32  # bytes any signature spans: windows overlap by this much
_BINARY = tuple((kind, re.compile(signature)) for kind, signature in _SIGNATURES)
# Every binary format has control bytes (below 0x20) somewhere in its header or structure
# (segment lengths, box sizes, the PNG signature itself), so a stream with none at all can
# only hold the formats that can be pure text.
_TEXTUAL = (rb"P[1-6][ \t\r\n#]", rb"%PDF-")
_TEXT = tuple((kind, pattern) for (kind, signature), (_, pattern) in zip(_SIGNATURES, _BINARY, strict=True) if signature in _TEXTUAL)
_WINDOW = 256 * 1024

_CONTAINERS = {"zip": archives.open_zip, "gzip": archives.open_gzip, "tar": archives.open_tar, "pdf": pdf.open_pdf}


def search(scan: ScanContext, stream: bytes, where: Where, depth: int, binary: bool) -> None:
    signatures = _BINARY if binary else _TEXT
    skips: list[tuple[int, int]] = []  # pixel data of images found: nothing a service would unpack
    pos = 0
    while (pos := _past_skips(pos, skips)) < len(stream):
        window_end = min(pos + _WINDOW, _next_skip_start(pos, skips, len(stream)))
        done = pos  # containers move it past themselves
        for hit_start, kind in _hits(signatures, stream, pos, window_end):
            if hit_start < done or _inside(hit_start, skips):
                continue
            if scan.out_of_time(where):
                return
            done = max(done, _handle(scan, stream, kind, hit_start, where, depth, skips))
        pos = max(window_end, done)


def _hits(signatures, stream: bytes, start: int, end: int) -> list[tuple[int, str]]:
    """Every signature starting in [start, end), in order (matched up to _LONGEST bytes past end)."""
    reach = min(len(stream), end + _LONGEST)
    found = [[(hit.start(), kind) for hit in pattern.finditer(stream, start, reach) if hit.start() < end] for kind, pattern in signatures]
    return list(heapq.merge(*found))


def _past_skips(pos: int, skips: list[tuple[int, int]]) -> int:
    for skip_start, skip_end in skips:
        if skip_start <= pos < skip_end:
            pos = skip_end
    return pos


def _next_skip_start(pos: int, skips: list[tuple[int, int]], default: int) -> int:
    return min((skip_start for skip_start, _ in skips if skip_start > pos), default=default)


def _inside(pos: int, skips: list[tuple[int, int]]) -> bool:
    return any(skip_start <= pos < skip_end for skip_start, skip_end in skips)


def _handle(scan: ScanContext, stream: bytes, kind: str, hit_start: int, where: Where, depth: int, skips: list) -> int:
    """Confirm and report one hit; returns the offset the search may go on from."""
    if kind in _CONTAINERS:
        resume = _CONTAINERS[kind](scan, stream, hit_start, where, depth)
        return resume if resume is not None else hit_start
    at = hit_start - _FTYP_OFFSET if kind == "ftyp" else hit_start
    if at >= 0 and (located := images.identify(stream, at)) is not None:
        scan.image(located.format, stream, at, located.end, where)
        skips.extend(located.pixel_ranges)
        skips.sort()
    return hit_start


def anywhere(data: bytes) -> bool:
    """Any image or container signature in `data` (a cheap test before a full decode)."""
    return any(pattern.search(data) is not None for _, pattern in _BINARY)
