"""JPEG (and MPO, which is JPEG plus secondary images after the first EOI).

Stripping is a segment walk that copies only what decoding needs, so the pixels
cannot change: frame and scan headers, tables, entropy-coded data. Everything that
can identify a person or device lives in APP segments, COM, or after EOI.
"""

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, JpegImagePlugin

from ..errors import LengthNotPreserved, MalformedImage
from . import exif
from . import icc as icc_module
from .base import Header, ImageFormat, Stripped, check_gap

SOI, EOI, SOS, DQT, DHT, DRI, DAC, DNL, COM = 0xD8, 0xD9, 0xDA, 0xDB, 0xC4, 0xDD, 0xCC, 0xDC, 0xFE
APP0, APP1, APP2, APP13, APP14 = 0xE0, 0xE1, 0xE2, 0xED, 0xEE
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
JUNK = -1  # pseudo-marker for bytes between segments that belong to none
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length
_DECODING_MARKERS = SOF_MARKERS | {DQT, DHT, DRI, DAC, DNL, SOS}

# In entropy-coded data 0xFF is always followed by a stuffed 0x00 or a restart marker;
# anything else is the next real marker (or a 0xFF fill byte before it). Kept to a
# fixed two-byte pattern: re scans that ~35x faster than one starting with \xff+.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")

_JFIF = b"JFIF\x00"
_JFXX = b"JFXX\x00"
_ADOBE = b"Adobe"
_ICC = b"ICC_PROFILE\x00"
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENDED = b"http://ns.adobe.com/xmp/extension/\x00"
_JFIF_WITHOUT_THUMBNAIL_LEN = 14  # identifier, version, units, densities, 0x0 thumbnail
_ADOBE_LEN = 12
_COM_MAX = 2 + 65535  # a whole COM segment: marker, then a length field counting itself and ≤ 65533 bytes
_FILL_BYTE = b"\xff"  # T.81 B.1.1.2: any marker may be preceded by 0xFF fill bytes
# Qualities tried, highest first, when a masked re-encode must fit the original length.
_FALLBACK_QUALITIES = (90, 85, 80, 75, 70, 60, 50, 40, 30, 20)


@dataclass(frozen=True)
class Segment:
    marker: int
    start: int  # offset of the 0xFF of the marker
    end: int  # offset just past the segment (and past scan data for SOS)
    payload: memoryview  # the bytes after the length field (empty for standalone markers)


def iter_segments(data: bytes) -> Iterator[Segment]:
    """Yield every marker segment from SOI to EOI inclusive. Raises MalformedImage when
    the structure is broken or the file ends before EOI. Bytes after EOI are not walked."""
    if data[:3] != b"\xff\xd8\xff":
        raise MalformedImage("not a JPEG: it does not start with a start-of-image marker")
    view = memoryview(data)
    yield Segment(SOI, 0, 2, view[0:0])
    pos, size = 2, len(data)
    while True:
        while pos + 1 < size and data[pos] == 0xFF and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 2 > size:
            raise MalformedImage("JPEG is truncated: it ends before its end-of-image marker")
        if data[pos] != 0xFF:
            # Like libjpeg, skip extraneous bytes to the next marker; they are never copied.
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise MalformedImage(f"JPEG is corrupt: no marker after byte {pos}")
            yield Segment(JUNK, pos, found.start(), view[pos : found.start()])
            pos = found.start()
            continue
        marker = data[pos + 1]
        if marker == EOI:
            yield Segment(EOI, pos, pos + 2, view[0:0])
            return
        if marker in _STANDALONE:
            yield Segment(marker, pos, pos + 2, view[0:0])
            pos += 2
            continue
        if pos + 4 > size:
            raise MalformedImage("JPEG is truncated inside a segment header")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        header_end = pos + 2 + length
        if length < 2 or header_end > size:
            raise MalformedImage(f"JPEG segment at byte {pos} claims {length} bytes, past the end of the file")
        end = header_end
        if marker == SOS:
            found = _NEXT_MARKER.search(data, header_end)
            if found is None:
                raise MalformedImage("JPEG is truncated: its scan data has no end")
            end = found.start()
        yield Segment(marker, pos, end, view[pos + 4 : header_end])
        pos = end


def _sof_header(data: bytes) -> Header:
    for segment in iter_segments(data):
        if segment.marker in SOF_MARKERS:
            payload = segment.payload
            if len(payload) < 6:
                raise MalformedImage("JPEG frame header is too short")
            height = int.from_bytes(payload[1:3], "big")
            width = int.from_bytes(payload[3:5], "big")
            if not width or not height:
                raise MalformedImage("JPEG declares an image with no width or height")
            return Header(width, height)
        if segment.marker == SOS:
            break
    raise MalformedImage("JPEG has no frame header before its first scan")


def _classify_app(marker: int, payload: bytes) -> set[str]:
    """Metadata categories an APPn/COM segment holds, for the report."""
    if marker == COM:
        return {"comment"}
    if marker == APP1 and payload.startswith(exif.EXIF_APP1_PREFIX):
        return exif.exif_categories(payload)
    if marker == APP1 and payload.startswith((_XMP, _XMP_EXTENDED)):
        return {"xmp"}
    if marker == APP13:
        return {"iptc"} if b"8BIM\x04\x04" in payload else {"photoshop"}
    if marker == APP2 and payload.startswith(b"MPF\x00"):
        return {"mpf"}
    if marker == APP2 and payload.startswith(b"FPXR"):
        return {"flashpix"}
    if marker == APP2 and payload.startswith(_ICC):
        return {"icc"}
    if marker == APP0 and payload.startswith(_JFXX):
        return {"thumbnail"}
    if marker == JUNK:
        return {"junk-bytes"}
    return {"vendor-segment"}


def _orientation(segments: list[Segment]) -> int:
    """EXIF Orientation wins over XMP's, as in Pillow and browsers."""
    xmp_orientation = None
    for segment in segments:
        payload = bytes(segment.payload[:65536])
        if segment.marker == APP1 and payload.startswith(exif.EXIF_APP1_PREFIX):
            value = exif.orientation_from_exif(payload)
            if value is not None:
                return value
        elif segment.marker == APP1 and payload.startswith(_XMP) and xmp_orientation is None:
            xmp_orientation = exif.orientation_from_xmp(payload)
    return xmp_orientation or 1


def _segment_bytes(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _jfif_without_thumbnail(payload: memoryview) -> tuple[bytes | None, bool]:
    """The JFIF APP0 can embed an RGB thumbnail of the photo: keep the header, drop it."""
    if len(payload) < _JFIF_WITHOUT_THUMBNAIL_LEN:
        return None, False
    had_thumbnail = payload[12] * payload[13] > 0 or len(payload) > _JFIF_WITHOUT_THUMBNAIL_LEN
    return _segment_bytes(APP0, bytes(payload[:12]) + b"\x00\x00"), had_thumbnail


def _is_filler(marker: int, payload: bytes) -> bool:
    """Veil's length-keeping filler: a COM segment of zero bytes and nothing else."""
    return marker == COM and not payload.strip(b"\x00")


def filler(gap: int) -> bytes:
    """Exactly `gap` bytes that decoders skip: COM segments of zeros, each at most 65537
    bytes, none shorter than 4 (the last is kept long enough by shortening the one before).
    A gap of 1-3 bytes cannot hold a segment; it becomes 0xFF fill bytes before the next
    marker, which T.81 allows and every decoder skips."""
    if gap < 4:
        return _FILL_BYTE * gap
    pieces, remaining = [], gap
    while remaining:
        take = min(remaining, _COM_MAX)
        if 0 < remaining - take < 4:
            take = remaining - 4
        pieces.append(b"\xff\xfe" + (take - 2).to_bytes(2, "big") + bytes(take - 4))
        remaining -= take
    return b"".join(pieces)


class Jpeg(ImageFormat):
    name = "jpeg"
    mime = "image/jpeg"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head[:3] == b"\xff\xd8\xff"

    def read_header(self, data: bytes) -> Header:
        return _sof_header(data)

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        segments = list(iter_segments(data))
        orientation = _orientation(segments)
        removed: set[str] = set()
        view = memoryview(data)
        out = [b"\xff\xd8"]
        if orientation != 1:
            exif_block = exif.EXIF_APP1_PREFIX + exif.minimal_orientation_exif(orientation)
            exif_segment = _segment_bytes(APP1, exif_block)
        icc_segments = _neutral_icc_segments(segments) if keep_icc else None
        if keep_icc and icc_segments is None:
            removed.add("icc")  # a damaged profile cannot be shown free of text: dropped
        for segment in segments[1:]:
            marker, payload = segment.marker, segment.payload
            if marker in _DECODING_MARKERS or marker in _STANDALONE or marker == EOI:
                out.append(view[segment.start : segment.end])
            elif marker == APP0 and payload[:5] == _JFIF:
                jfif, had_thumbnail = _jfif_without_thumbnail(payload)
                out += [jfif] if jfif else []
                removed |= {"thumbnail"} if had_thumbnail else set()
            elif marker == APP14 and payload[:5] == _ADOBE and len(payload) >= _ADOBE_LEN:
                out.append(_segment_bytes(APP14, bytes(payload[:_ADOBE_LEN])))
            elif marker == APP2 and payload[:12] == _ICC and icc_segments is not None:
                out.append(icc_segments.pop(0))
            else:
                removed |= _classify_app(marker, bytes(payload[:65536]))
        if orientation != 1:
            # After SOI and the JFIF header if there is one: where readers look for EXIF.
            out.insert(2 if len(out) > 1 and bytes(out[1][:4]) == b"\xff\xe0\x00\x10" else 1, exif_segment)
        if segments[-1].end < len(data):
            removed.add("trailer")
        return Stripped(b"".join(out), frozenset(removed), orientation)

    def findings(self, data: bytes) -> list[str]:
        found = []
        segments = list(iter_segments(data))
        for segment in segments:
            marker, payload = segment.marker, bytes(segment.payload)
            if marker in _DECODING_MARKERS or marker in _STANDALONE or marker in (SOI, EOI):
                continue
            if marker == APP0 and payload[:5] == _JFIF and len(payload) == _JFIF_WITHOUT_THUMBNAIL_LEN:
                if payload[12:14] == b"\x00\x00":
                    continue
            if marker == APP14 and payload[:5] == _ADOBE and len(payload) == _ADOBE_LEN:
                continue
            if marker == APP2 and payload[:12] == _ICC and _icc_is_neutral(segments):
                continue
            if marker == APP1 and exif.is_minimal_orientation_exif(payload) and payload[:6] == exif.EXIF_APP1_PREFIX:
                continue
            if _is_filler(marker, payload):
                continue
            name = "bytes outside any segment" if marker == JUNK else f"marker 0x{marker:02X}"
            found.append(f"{name} ({len(payload)} bytes) at byte {segment.start}")
        if segments[-1].end != len(data):
            found.append(f"{len(data) - segments[-1].end} bytes after the end-of-image marker")
        return found

    def pad_to(self, data: bytes, length: int) -> bytes:
        """The filler goes after the APPn headers (JFIF, EXIF orientation, ICC, Adobe), before
        the first table or frame marker: where COM segments normally sit."""
        gap = check_gap(self.name, data, length)
        if not gap:
            return data
        at = next((s.start for s in iter_segments(data) if s.marker != SOI and not 0xE0 <= s.marker <= 0xEF), None)
        if at is None:
            raise LengthNotPreserved("the cleaned JPEG has no frame marker to put the filler before")
        return data[:at] + filler(gap) + data[at:]

    def encode_attempts(self, pixels: Image.Image, source: bytes, icc: bytes | None):
        yield self.encode(pixels, source, icc), None
        tables = getattr(Image.open(io.BytesIO(source)), "quantization", None) or {}
        ceiling = estimate_quality(list(tables[0])) if 0 in tables else 100
        for quality in _FALLBACK_QUALITIES:
            if quality < ceiling:
                yield self.encode(pixels, source, icc, quality), quality

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None, quality: int | None = None) -> bytes:
        options = {"optimize": False, "exif": b"", "comment": b""}
        if icc:
            options["icc_profile"] = icc
        original = Image.open(io.BytesIO(source))  # header only: tables and sampling
        tables = getattr(original, "quantization", None)
        if quality is not None:
            options["quality"] = quality  # IJG tables at this quality: a smaller file than the source's
        elif tables and all(max(table) <= 255 for table in tables.values()) and len(tables) <= 4:
            options["qtables"] = tables  # the source's own tables: its quality, exactly
        else:
            options["quality"] = 90
        sampling = JpegImagePlugin.get_sampling(original)
        if sampling in (0, 1, 2):
            options["subsampling"] = sampling
        if pixels.mode not in ("L", "RGB", "CMYK"):
            pixels = pixels.convert("RGB")
        buffer = io.BytesIO()
        pixels.save(buffer, "JPEG", **options)
        return buffer.getvalue()


# IJG's standard luminance table (natural order), used to name a quality for the report.
_IJG_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def estimate_quality(luminance_table: list[int]) -> int:
    """The IJG quality (1-100) whose scaled luminance table is closest to this one.
    Compares sums, so it does not matter whether the table is in zigzag or natural order."""
    actual = sum(luminance_table)

    def table_sum(quality: int) -> int:
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        return sum(min(255, max(1, (value * scale + 50) // 100)) for value in _IJG_LUMINANCE)

    return min(range(1, 101), key=lambda quality: abs(table_sum(quality) - actual))


def _icc_pieces(segments) -> list[bytes]:
    return [bytes(segment.payload[14:]) for segment in segments if segment.marker == APP2 and segment.payload[:12] == _ICC]


def _neutral_icc_segments(segments) -> list[bytes] | None:
    """The APP2 segments of the colour profile with its text neutralised, same sizes and
    order; None when the profile is damaged."""
    icc = [segment for segment in segments if segment.marker == APP2 and segment.payload[:12] == _ICC]
    pieces = icc_module.neutral_pieces(_icc_pieces(segments)) if icc else []
    if pieces is None:
        return None
    return [_segment_bytes(APP2, bytes(segment.payload[:14]) + piece) for segment, piece in zip(icc, pieces)]


def _icc_is_neutral(segments) -> bool:
    return icc_module.pieces_are_neutral(_icc_pieces(segments))
