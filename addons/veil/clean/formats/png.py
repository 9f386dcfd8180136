"""PNG (and APNG, whose frame chunks are kept so animation survives a strip).

A chunk walk: critical chunks and the ones that change how pixels look are copied
verbatim; text, EXIF, timestamps and private chunks are dropped.
"""

import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from ..errors import LengthNotPreserved, MalformedImage, UnsupportedFormat
from . import exif, icc
from .base import Header, ImageFormat, Stripped, check_gap

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
_DISPLAY = {b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"tRNS", b"bKGD", b"cICP", b"mDCv", b"cLLi"}
_ANIMATION = {b"acTL", b"fcTL", b"fdAT"}
_KEPT = _CRITICAL | _DISPLAY | _ANIMATION
_CATEGORY = {
    b"tEXt": "text-chunks",
    b"zTXt": "text-chunks",
    b"iTXt": "text-chunks",
    b"eXIf": "exif",
    b"tIME": "timestamp",
    b"iCCP": "icc",
}
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_RAW_EXIF_KEYWORD = b"Raw profile type exif"  # ImageMagick's hex-in-text EXIF
_XMP_KEYWORD = b"XML:com.adobe.xmp"
_MAX_TEXT_INFLATE = 1 << 20
# Veil's length-keeping filler: ancillary (lower-case first letter), private (lower-case
# second), reserved bit clear (upper-case third), safe to copy (lower-case fourth); all zeros.
FILLER = b"vlPd"
_CHUNK_OVERHEAD = 12  # length, type, CRC
_MAX_CHUNK_DATA = 0x7FFFFFFF  # enough for any orientation tag, too little for a zip bomb


@dataclass(frozen=True)
class Chunk:
    kind: bytes
    start: int  # offset of the length field
    end: int  # offset just past the CRC
    data: memoryview


def iter_chunks(data: bytes, check_crc: bool = True) -> Iterator[Chunk]:
    """Every chunk from IHDR to IEND inclusive; bytes after IEND are not walked."""
    if not data.startswith(SIGNATURE):
        raise MalformedImage("not a PNG: the signature is missing")
    view, pos, size = memoryview(data), len(SIGNATURE), len(data)
    while True:
        if pos + 12 > size:
            raise MalformedImage("PNG is truncated: it ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > size or not kind.isalpha():
            raise MalformedImage(f"PNG chunk at byte {pos} is corrupt or runs past the end of the file")
        body = view[pos + 8 : pos + 8 + length]
        if check_crc and zlib.crc32(view[pos + 4 : pos + 8 + length]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise MalformedImage(f"PNG chunk {kind.decode()} at byte {pos} fails its checksum")
        yield Chunk(kind, pos, end, body)
        if kind == b"IEND":
            return
        pos = end


def _chunk_bytes(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _text_payload(chunk: Chunk) -> tuple[bytes, bytes]:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk, inflating at most _MAX_TEXT_INFLATE bytes."""
    raw = bytes(chunk.data)
    keyword, _, rest = raw.partition(b"\x00")
    try:
        if chunk.kind == b"zTXt":
            return keyword, zlib.decompressobj().decompress(rest[1:], _MAX_TEXT_INFLATE)
        if chunk.kind == b"iTXt":
            compressed, rest = rest[:1] == b"\x01", rest[2:]
            _, _, rest = rest.partition(b"\x00")  # language tag
            _, _, text = rest.partition(b"\x00")  # translated keyword
            return keyword, zlib.decompressobj().decompress(text, _MAX_TEXT_INFLATE) if compressed else text
    except zlib.error:
        return keyword, b""
    return keyword, rest


def _exif_from_raw_profile(text: bytes) -> bytes:
    """ImageMagick writes '\\nexif\\n  <length>\\n<hex…>'; the hex is the EXIF block."""
    hex_digits = re.sub(rb"\s", b"", b"".join(text.split(b"\n")[3:]))
    try:
        return bytes.fromhex(hex_digits.decode())
    except ValueError:
        return b""


def _orientation_and_categories(chunks: list[Chunk]) -> tuple[int, set[str]]:
    exif_orientation = xmp_orientation = None
    categories: set[str] = set()
    for chunk in chunks:
        if chunk.kind == b"eXIf":
            categories |= exif.exif_categories(bytes(chunk.data))
            exif_orientation = exif_orientation or exif.orientation_from_exif(bytes(chunk.data))
        elif chunk.kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, text = _text_payload(chunk)
            if keyword == _XMP_KEYWORD:
                categories.add("xmp")
                xmp_orientation = xmp_orientation or exif.orientation_from_xmp(text)
            elif keyword == _RAW_EXIF_KEYWORD:
                block = _exif_from_raw_profile(text)
                categories |= exif.exif_categories(block)
                exif_orientation = exif_orientation or exif.orientation_from_exif(block)
    return exif_orientation or xmp_orientation or 1, categories


class Png(ImageFormat):
    name = "png"
    mime = "image/png"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head.startswith(SIGNATURE)

    def read_header(self, data: bytes) -> Header:
        first = next(iter_chunks(data, check_crc=False))
        if first.kind != b"IHDR" or len(first.data) != 13:
            raise MalformedImage("PNG does not start with a valid IHDR chunk")
        width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", first.data)
        if not width or not height:
            raise MalformedImage("PNG declares an image with no width or height")
        if depth not in _BIT_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
            raise MalformedImage(f"PNG header is invalid (colour type {colour}, bit depth {depth})")
        frames = 1
        for chunk in iter_chunks(data, check_crc=False):
            if chunk.kind == b"acTL" and len(chunk.data) >= 4:
                frames = max(1, struct.unpack_from(">I", chunk.data)[0])
            if chunk.kind == b"IDAT":
                return Header(width, height, frames)  # acTL must come before the first IDAT
        raise MalformedImage("PNG has no image data (IDAT) chunk")

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        chunks = list(iter_chunks(data))
        orientation, removed = _orientation_and_categories(chunks)
        view = memoryview(data)
        out = [SIGNATURE]
        for chunk in chunks:
            if chunk.kind == b"iCCP" and keep_icc:
                neutral = _neutral_iccp(bytes(chunk.data))
                out += [_chunk_bytes(b"iCCP", neutral)] if neutral else []
                removed |= set() if neutral else {"icc"}
            elif chunk.kind in _KEPT:
                if orientation != 1 and chunk.kind == b"IDAT" and out[-1][4:8] != b"IDAT":
                    out.append(_chunk_bytes(b"eXIf", exif.minimal_orientation_exif(orientation)))
                out.append(view[chunk.start : chunk.end])
            elif chunk.kind[0:1].isupper():
                raise UnsupportedFormat(f"PNG has an unknown critical chunk {chunk.kind.decode()!r}")
            else:
                removed.add(_CATEGORY.get(chunk.kind, "private-chunks"))
        if chunks[-1].end < len(data):
            removed.add("trailer")
        return Stripped(b"".join(out), frozenset(removed), orientation)

    def findings(self, data: bytes) -> list[str]:
        found = []
        chunks = list(iter_chunks(data))
        for chunk in chunks:
            if chunk.kind in _KEPT or (chunk.kind == b"iCCP" and _iccp_is_neutral(bytes(chunk.data))):
                continue
            if chunk.kind == b"eXIf" and exif.is_minimal_orientation_exif(bytes(chunk.data)):
                continue
            if chunk.kind == FILLER and not bytes(chunk.data).strip(b"\x00"):
                continue
            found.append(f"chunk {chunk.kind.decode(errors='replace')} ({len(chunk.data)} bytes) at byte {chunk.start}")
        if chunks[-1].end != len(data):
            found.append(f"{len(data) - chunks[-1].end} bytes after the IEND chunk")
        return found

    def pad_to(self, data: bytes, length: int) -> bytes:
        """One zero-filled private chunk just before IEND (a chunk costs 12 bytes at least)."""
        gap = check_gap(self.name, data, length)
        if not gap:
            return data
        if gap < _CHUNK_OVERHEAD:
            raise LengthNotPreserved(
                f"the cleaned PNG is {gap} bytes shorter than the original; a filler chunk needs at least "
                f"{_CHUNK_OVERHEAD}, so the original length cannot be kept"
            )
        iend = list(iter_chunks(data, check_crc=False))[-1].start
        return data[:iend] + _chunk_bytes(FILLER, bytes(gap - _CHUNK_OVERHEAD)) + data[iend:]

    def encode_attempts(self, pixels: Image.Image, source: bytes, icc: bytes | None):
        yield self.encode(pixels, source, icc), None
        yield self.encode(pixels, source, icc, compress_level=9), None

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None, compress_level: int = 6) -> bytes:
        # Nothing from source.info is passed on: Pillow would otherwise copy text and EXIF.
        options = {"optimize": False, "compress_level": compress_level}
        if icc:
            options["icc_profile"] = icc
        if pixels.mode not in ("1", "L", "LA", "I", "I;16", "RGB", "RGBA", "P"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        buffer = io.BytesIO()
        pixels.save(buffer, "PNG", **options)
        return buffer.getvalue()

    def encode_frames(self, frames: list[Image.Image], source: bytes, icc: bytes | None, durations: list[int], loop: int | None) -> bytes:
        """An APNG from full frames, with their timing and loop count; no text, no EXIF."""
        options = {"optimize": False, "compress_level": 6, "disposal": 1, "blend": 0}
        if icc:
            options["icc_profile"] = icc
        frames = [frame if frame.mode in ("RGB", "RGBA") else frame.convert("RGBA") for frame in frames]
        buffer = io.BytesIO()
        frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=durations, loop=loop or 0, **options)
        return buffer.getvalue()


def _neutral_iccp(data: bytes) -> bytes | None:
    """An iCCP chunk's data (profile name, NUL, method 0, zlib profile) with a neutral name
    and profile text (see icc.py); None when it cannot be read (the profile is dropped)."""
    name, nul, rest = data.partition(b"\x00")
    if not nul or rest[:1] != b"\x00":
        return None
    try:
        profile = zlib.decompress(rest[1:])
        neutral = icc.neutralise(profile)
    except (zlib.error, icc.DamagedProfile):
        return None
    compressed = rest[1:] if neutral == profile else zlib.compress(neutral, 9)
    return _ICCP_NAME + b"\x00\x00" + compressed


_ICCP_NAME = b"ICC Profile"  # what Pillow writes, so a re-encoded PNG carries the same name


def _iccp_is_neutral(data: bytes) -> bool:
    name, _, rest = data.partition(b"\x00")
    try:
        return name == _ICCP_NAME and icc.is_neutral(zlib.decompress(rest[1:]))
    except (zlib.error, icc.DamagedProfile):
        return False
