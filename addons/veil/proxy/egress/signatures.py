"""Images and containers found by their magic bytes at any offset of a stream.

One compiled regex per stream finds every candidate (a handful of literal signatures is
far cheaper in one pass than one bytes.find each); each hit is then confirmed by its own
reader: images.identify for images, the container modules for archives and PDFs.
"""

import re

from . import archives, images, pdf
from .context import ScanContext, Where

# Image signatures: the first bytes of every format veil.clean.formats and the envelopes'
# magic test know. Each is confirmed by images.identify, so these only need to be necessary.
_IMAGE_SIGNATURES = (
    rb"\xff\xd8\xff",  # JPEG
    rb"\x89PNG\r\n\x1a\n",
    rb"GIF8[79]a",
    rb"RIFF[\s\S]{4}WEBP",
    rb"II[*+]\x00|MM\x00[*+]",  # TIFF, both byte orders, and BigTIFF
    rb"BM[\s\S]{12}[\x0c\x10\x28\x34\x38\x40\x6c\x7c]\x00\x00\x00",  # BMP: a DIB header size behind "BM"
    rb"P[1-6][ \t\r\n#]",  # PNM
    rb"\x00\x00\x00\x0c(?:jP  |JXL )\r\n\x87\n|\xff\x4f\xff\x51",  # JPEG 2000, JPEG XL
)
# ISO media (HEIC/HEIF/AVIF): the box type sits 4 bytes into the file.
_FTYP_OFFSET = 4
_BINARY = re.compile(
    rb"(?P<image>" + rb"|".join(_IMAGE_SIGNATURES) + rb")"
    rb"|(?P<ftyp>ftyp)"
    rb"|(?P<zip>PK\x03\x04)"
    rb"|(?P<gzip>\x1f\x8b\x08)"
    rb"|(?P<pdf>%PDF-)"
    rb"|(?P<tar>ustar(?:\x00|  \x00))"
)
# A stream without a single control byte cannot hold a binary signature (each one, or the
# header right behind it, has a byte below 0x20): only the formats that can be pure text.
_TEXT = re.compile(rb"(?P<image>P[1-6][ \t\r\n#])|(?P<pdf>%PDF-)")

_CONTAINERS = {"zip": archives.open_zip, "gzip": archives.open_gzip, "tar": archives.open_tar, "pdf": pdf.open_pdf}


def search(scan: ScanContext, stream: bytes, where: Where, depth: int, binary: bool) -> None:
    pattern = _BINARY if binary else _TEXT
    skips: list[tuple[int, int]] = []  # pixel data of images found: nothing a service would unpack
    pos = 0
    while (hit := _next_hit(pattern, stream, pos, skips)) is not None:
        if scan.out_of_time(where):
            return
        pos = _handle(scan, stream, hit, where, depth, skips)


def _next_hit(pattern: re.Pattern, stream: bytes, pos: int, skips: list[tuple[int, int]]) -> re.Match | None:
    """The next signature at or after `pos`, never inside a skipped range (searched around them
    rather than through them: skipping is what makes a 10 MB photo cheap)."""
    while True:
        skips.sort()
        while skips and skips[0][1] <= pos:
            skips.pop(0)
        window_end = skips[0][0] if skips and skips[0][0] > pos else len(stream)
        if skips and skips[0][0] <= pos:
            pos = skips.pop(0)[1]
            continue
        hit = pattern.search(stream, pos, window_end)
        if hit is not None or window_end >= len(stream):
            return hit
        pos = window_end


def _handle(scan: ScanContext, stream: bytes, hit: re.Match, where: Where, depth: int, skips: list) -> int:
    """Confirm and report one hit; returns where the search goes on."""
    kind = hit.lastgroup
    if kind in _CONTAINERS:
        resume = _CONTAINERS[kind](scan, stream, hit.start(), where, depth)
        return max(resume, hit.start() + 1) if resume is not None else hit.start() + 1
    at = hit.start() - _FTYP_OFFSET if kind == "ftyp" else hit.start()
    if at >= 0:
        located = images.identify(stream, at)
        if located is not None:
            scan.image(located.format, stream, at, located.end, where)
            skips.extend(located.pixel_ranges)
    return hit.start() + 1


def anywhere(data: bytes) -> bool:
    """Any image or container signature in `data` (a cheap test before a full decode)."""
    return _BINARY.search(data) is not None or _TEXT.search(data) is not None
