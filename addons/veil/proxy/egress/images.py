"""Is there an image at this offset, and where does it end?

Which formats exist and what their headers look like is veil.clean.formats' knowledge: a
candidate offset (found by signatures.py) is confirmed by a format's own `accepts` and
`read_header`, so random bytes that happen to share a signature are not reported. Formats
Veil recognises but cannot clean (JPEG 2000, JPEG XL, BigTIFF…) are confirmed by the
envelopes' wider magic test: they must be found all the same.
"""

import collections
import struct
from dataclasses import dataclass

from ...clean.errors import SanitiseError
from ...clean.formats import FORMATS, ImageFormat, gif, jpeg, png, webp
from ..envelopes.magic import HEAD_BYTES, looks_like_image

# Formats whose signature alone is 48 bits or more (plus fixed fields behind it): a hit is an
# image without reading its header, so a truncated or deliberately damaged file still counts
# (it still leaks its metadata), and no native decoder (libheif, libavif) ever parses
# scanned bytes. Shorter signatures need a header their pure-Python reader can read.
_LONG_SIGNATURES = frozenset({"png", "gif", "webp", "heif", "avif"})
# What the format readers raise on bytes that are not (all) an image. Anything else is a bug,
# and must fail a test rather than quietly turn into "not an image" or "extent unknown".
_DAMAGED = (SanitiseError, struct.error, IndexError, ValueError, KeyError, OverflowError, EOFError)
_WEBP_BITSTREAMS = frozenset({b"VP8 ", b"VP8L", b"ALPH"})  # compressed pixels (ANMF frames hold headers of their own)


@dataclass(frozen=True)
class Located:
    format: str
    end: int | None  # offset just past the image in its stream, when the format says
    # Compressed pixel data (JPEG scans, PNG IDAT): what a reader turns into pixels and
    # nothing else, so the search for further signatures need not read it.
    pixel_ranges: tuple[tuple[int, int], ...] = ()


def identify(stream: bytes, pos: int) -> Located | None:
    """The image starting at `pos` in `stream`, or None when the bytes there only look like one."""
    head = bytes(stream[pos : pos + HEAD_BYTES])
    view = memoryview(stream)[pos:]
    for image_format in FORMATS:
        if image_format.accepts(head):
            if image_format.name in _LONG_SIGNATURES or _header_readable(image_format, view) or _plausible_jpeg(image_format, head):
                return _located(image_format.name, view, pos)
            return None
    if looks_like_image(head):
        return Located("other-image", None)
    return None


def _header_readable(image_format: ImageFormat, view: memoryview) -> bool:
    try:
        header = image_format.read_header(view)
    except _DAMAGED:
        return False
    return header.width > 0 and header.height > 0


def _plausible_jpeg(image_format: ImageFormat, head: bytes) -> bool:
    """A JPEG whose frame header is unreadable (cut short, or junk before SOF) still counts
    when it opens with a real segment: FF D8, then a marker and a length of at least 2."""
    if image_format.name != "jpeg" or len(head) < 6:
        return False
    marker, length = head[3], int.from_bytes(head[4:6], "big")
    return 0xC0 <= marker <= 0xFE and length >= 2


def _located(name: str, view: memoryview, pos: int) -> Located:
    try:
        length, pixels = _STRUCTURE_OF[name](view) if name in _STRUCTURE_OF else (None, ())
    except _DAMAGED:  # truncated or damaged: the extent is unknown, the image still counts
        return Located(name, None)
    shifted = tuple((pos + start, pos + end) for start, end in pixels)
    return Located(name, None if length is None else pos + length, shifted)


def _jpeg_structure(view: memoryview) -> tuple[int | None, list[tuple[int, int]]]:
    last, scans = None, []
    for last in jpeg.iter_segments(view):
        if last.marker == jpeg.SOS:
            scans.append((last.start + 4 + len(last.payload), last.end))
    ended = last is not None and last.marker == jpeg.EOI
    return (last.end if ended else None), scans


def _png_structure(view: memoryview) -> tuple[int, list[tuple[int, int]]]:
    last, idat = None, []
    for last in png.iter_chunks(bytes(view[: _bounded_png_scan(view)]), check_crc=False):
        if last.kind == b"IDAT":
            idat.append((last.start + 8, last.end - 4))
    return last.end, idat


def _bounded_png_scan(view: memoryview) -> int:
    """PNG's reader wants bytes: copy only as far as the chunk lengths reach."""
    pos = len(png.SIGNATURE)
    while pos + 12 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, pos)
        pos += 12 + length
        if kind == b"IEND":
            break
    return min(pos, len(view))


def _gif_structure(view: memoryview) -> tuple[int, list]:
    (trailer,) = collections.deque(gif.iter_blocks(view), maxlen=1)  # walked to the end: the trailer
    return trailer.end, []


def _webp_structure(view: memoryview) -> tuple[int, list[tuple[int, int]]]:
    chunks = list(webp.iter_chunks(view))  # raises on a RIFF size past the end: extent unknown
    pixels = [(chunk.start + 8, chunk.end) for chunk in chunks if chunk.fourcc in _WEBP_BITSTREAMS]
    return 8 + struct.unpack_from("<I", view, 4)[0], pixels


def _bmp_structure(view: memoryview) -> tuple[int | None, list]:
    declared = struct.unpack_from("<I", view, 2)[0]
    return (declared if 26 <= declared <= len(view) else None), []


_STRUCTURE_OF = {"jpeg": _jpeg_structure, "png": _png_structure, "gif": _gif_structure, "webp": _webp_structure, "bmp": _bmp_structure}


def iso_media_brand(stream: bytes, at: int) -> str | None:
    """The major brand of a plausible ISO media file at `at` (an ftyp box of a sane size
    whose brands are printable), else None."""
    box = stream[at : at + 16]
    size = int.from_bytes(box[:4], "big") if len(box) == 16 else 0
    brand = box[8:12]
    if not 16 <= size <= 1024 or size % 4 or not brand.isascii() or not brand.strip().isalnum():
        return None
    return brand.decode("ascii")
