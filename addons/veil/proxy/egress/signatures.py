"""Images and containers found by their magic bytes at any offset of a stream.

Each signature is a needle of its own, found with bytes.find; in a long stream one regex
alternation of them all is ten times slower (it tries every branch at every byte), in a
small one it is the faster way to learn that nothing is there. The stream is searched window
by window, so the pixel data of an image found early (a 10 MB photo's JPEG scans) is never
read. Each hit is confirmed by its own reader: images.identify for images, the container
modules for archives and PDFs.
"""

import re

from . import archives, images, pdf
from .context import ScanContext, Where

# (kind, needle, where the file starts relative to the needle). Image needles: the first
# bytes of every format veil.clean.formats and the envelopes' magic test know, or a rarer
# part of the header for formats whose first bytes are common; images.identify confirms
# every hit, so a needle only needs to be necessary. A bytes needle is found with
# bytes.find (twice as fast as the regex engine on a literal); PNM needs a pattern.
_SIGNATURES: tuple[tuple[str, bytes | re.Pattern, int], ...] = (
    ("image", b"\xff\xd8\xff", 0),  # JPEG
    ("image", b"\x89PNG\r\n\x1a\n", 0),
    ("image", b"GIF8", 0),
    ("image", b"WEBP", 8),  # RIFF, size, WEBP: "RIFF" alone is also WAV and AVI
    ("image", b"II*\x00", 0),  # TIFF, Intel byte order
    ("image", b"MM\x00*", 0),  # Motorola byte order
    ("image", b"II+\x00", 0),  # BigTIFF, recognised though not cleaned
    ("image", b"MM\x00+", 0),
    ("image", b"BM", 0),  # Bmp.accepts checks the DIB header size behind it
    ("image", re.compile(rb"P[1-6][ \t\r\n#]"), 0),  # PNM
    ("image", b"\r\n\x87\n", 8),  # JPEG 2000 and JPEG XL containers: a 12-byte signature box
    ("image", b"\xff\x4f\xff\x51", 0),  # JPEG 2000 codestream
    ("iso-media", b"ftyp", 4),  # HEIC/HEIF/AVIF, or a video: the box type, after its size
    ("zip", b"PK\x03\x04", 0),
    ("gzip", b"\x1f\x8b\x08", 0),
    ("pdf", b"%PDF-", 0),
    ("tar", b"ustar", 257),
    ("bzip2", b"1AY&SY", 4),  # "BZh", the block size, then the first block's magic
    ("xz", b"\xfd7zXZ\x00", 0),
    *(("unopened", magic, 0) for magic in archives.UNOPENED),  # 7z, RAR, OLE: reported opaque
)
_LONGEST = 16  # bytes any needle spans: windows overlap by this much
_WINDOW = 256 * 1024
# For a few kilobytes one alternation beats a call per needle: the opposite of a long
# stream, where each needle's own search is ten times faster. (Without groups: capturing
# groups make the engine try every branch at every byte, a hundred times slower.)
_SMALL = 4096
_ANY_NEEDLE = re.compile(rb"|".join(re.escape(needle) if isinstance(needle, bytes) else needle.pattern for _, needle, _ in _SIGNATURES))

# Which needles can start where no control byte (below 0x20) follows soon. Every binary
# format has one within its first few hundred bytes (segment lengths, box and chunk sizes,
# the PNG signature itself, tar's NUL-terminated magic), except JPEG and GIF, whose comment
# segments and extension blocks can chain printable bytes for as long as a writer likes.
# So a stream without a control byte can only hold the formats that can be pure text (PNM,
# PDF), and a window without one (nor in the _CONTROL_REACH bytes after it) only those and
# JPEG and GIF: the rest of the needles are not searched there.
_CONTROL_REACH = 512
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_FORMATS = frozenset({"pdf"})
_TEXT = tuple(signature for signature in _SIGNATURES if signature[0] in _TEXT_FORMATS or not isinstance(signature[1], bytes))
_TEXT_WINDOW = _TEXT + tuple(signature for signature in _SIGNATURES if signature[1] in (b"\xff\xd8\xff", b"GIF8"))

_CONTAINERS = {
    "zip": archives.open_zip,
    "gzip": archives.open_gzip,
    "tar": archives.open_tar,
    "bzip2": archives.open_bzip2,
    "xz": archives.open_xz,
    "unopened": archives.report_unopened,
}


def search(scan: ScanContext, stream: bytes, binary: bool, spans: list[tuple[int, int]], where: Where, depth: int) -> list[tuple[int, int]]:
    """Report every image and container starting in `spans` of `stream` (`binary`: it has a
    control byte); returns the pixel data of the images found, sorted, which the other
    layers skip too."""
    skips: list[tuple[int, int]] = []  # pixel data of images found: nothing a service would unpack
    if binary:
        archives.open_zlib_at_start(scan, stream, where, depth)
    pdf_walked = 0
    for span_start, span_end in spans:
        pos = span_start
        while (pos := _past_skips(pos, skips)) < span_end:
            window_end = min(pos + _WINDOW, _next_skip_start(pos, skips, span_end))
            signatures = _TEXT if not binary else _SIGNATURES if _CONTROL.search(stream, pos, window_end + _CONTROL_REACH) else _TEXT_WINDOW
            done = pos  # containers move it past themselves
            for at, kind in _hits(signatures, stream, pos, window_end):
                if at < done or _inside(at, skips):
                    continue
                if scan.out_of_time(where):
                    return skips
                if kind == "pdf":
                    # The search goes on inside a PDF (bytes between its streams are not its to
                    # open), but a "%PDF-" inside one already walked is not walked again.
                    pdf_walked = pdf.open_pdf(scan, stream, at, where, depth) if at >= pdf_walked else pdf_walked
                    continue
                done = max(done, _handle(scan, stream, kind, at, where, depth, skips))
            pos = max(window_end, done)
    return skips


def _hits(signatures, stream: bytes, start: int, end: int) -> list[tuple[int, str]]:
    """(file start, kind) of every needle found in [start, end), in order of file start."""
    reach = min(len(stream), end + _LONGEST)
    if reach - start <= _SMALL and _ANY_NEEDLE.search(stream, start, reach) is None:
        return []  # most decoded streams are small and hold nothing: one regex call says so
    found = []
    for kind, needle, offset in signatures:
        if isinstance(needle, bytes):
            at = stream.find(needle, start, reach)
            while at >= 0:
                if offset <= at < end:
                    found.append((at - offset, kind))
                at = stream.find(needle, at + 1, reach)
        else:
            found += [(hit.start(), kind) for hit in needle.finditer(stream, start, reach) if hit.start() < end]
    found.sort()
    return found


def _past_skips(pos: int, skips: list[tuple[int, int]]) -> int:
    for skip_start, skip_end in skips:
        if skip_start <= pos < skip_end:
            pos = skip_end
    return pos


def _next_skip_start(pos: int, skips: list[tuple[int, int]], default: int) -> int:
    return min((skip_start for skip_start, _ in skips if skip_start > pos), default=default)


def _inside(pos: int, skips: list[tuple[int, int]]) -> bool:
    return any(skip_start <= pos < skip_end for skip_start, skip_end in skips)


def _handle(scan: ScanContext, stream: bytes, kind: str, at: int, where: Where, depth: int, skips: list) -> int:
    """Confirm and report one hit at `at` (where the file would start); returns the offset the
    search may go on from."""
    if kind in _CONTAINERS:
        resume = _CONTAINERS[kind](scan, stream, at, where, depth)
        return resume if resume is not None else at
    if (located := images.identify(stream, at)) is not None:
        scan.image(located.format, stream, at, located.end, where)
        skips.extend(located.pixel_ranges)
        skips.sort()
    elif kind == "iso-media" and (brand := images.iso_media_brand(stream, at)) is not None:
        # A video (or a camera raw) holds faces as well as a photo does, but no image
        # Veil checks: the caller's opaque_files policy decides.
        scan.opaque(
            "iso-media", (*where, f"iso-media at byte {at:,}"), f"ISO media of brand {brand!r} (a video?) is not an image Veil checks"
        )
    return at


def anywhere(head: bytes) -> bool:
    """Any image or container signature in `head`, the first few hundred bytes of a decode
    (a cheap test before a full decode, run three times per base64 run)."""
    return _ANY_NEEDLE.search(head) is not None
