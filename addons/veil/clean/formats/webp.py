"""WebP: a RIFF container. Image chunks are copied verbatim; EXIF, XMP and unknown
chunks are dropped, and the VP8X flags are made to tell the truth afterwards."""

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from ..errors import LengthNotPreserved, MalformedImage
from . import exif, icc
from .base import Header, ImageFormat, Stripped, check_gap

_IMAGE_CHUNKS = {b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"}
_FLAG_ANIMATION, _FLAG_XMP, _FLAG_EXIF, _FLAG_ALPHA, _FLAG_ICC = 0x02, 0x04, 0x08, 0x10, 0x20
_CATEGORY = {b"EXIF": "exif", b"XMP ": "xmp", b"ICCP": "icc"}
FILLER = b"vlPd"  # Veil's length-keeping filler: an unknown chunk of zero bytes, which readers skip
_CHUNK_HEADER = 8
_VP8X_CHUNK = 18  # header + 10 bytes: what a simple WebP needs before it may hold another chunk


@dataclass(frozen=True)
class Chunk:
    fourcc: bytes
    start: int
    end: int  # past the padding byte of odd-sized chunks
    data: memoryview


def _riff_end(data: bytes) -> int:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedImage("not a WebP: the RIFF/WEBP header is missing")
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end > len(data) or riff_end < 12:
        raise MalformedImage("WebP is truncated: its RIFF size runs past the end of the file")
    return riff_end


def iter_chunks(data: bytes) -> Iterator[Chunk]:
    riff_end, view, pos = _riff_end(data), memoryview(data), 12
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise MalformedImage(f"WebP chunk header at byte {pos} is truncated")
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > riff_end:
            raise MalformedImage(f"WebP chunk {fourcc!r} at byte {pos} runs past the end of the file")
        yield Chunk(fourcc, pos, min(end, riff_end), view[pos + 8 : pos + 8 + size])
        pos = end


def _chunk_bytes(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _dimensions(chunk: Chunk) -> tuple[int, int] | None:
    body = bytes(chunk.data[:10])
    if chunk.fourcc == b"VP8X" and len(body) >= 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk.fourcc == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        return struct.unpack_from("<H", body, 6)[0] & 0x3FFF, struct.unpack_from("<H", body, 8)[0] & 0x3FFF
    if chunk.fourcc == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _orientation(chunks: list[Chunk]) -> int:
    exif_orientation = xmp_orientation = None
    for chunk in chunks:
        if chunk.fourcc == b"EXIF":
            exif_orientation = exif_orientation or exif.orientation_from_exif(bytes(chunk.data))
        elif chunk.fourcc == b"XMP ":
            xmp_orientation = xmp_orientation or exif.orientation_from_xmp(bytes(chunk.data))
    return exif_orientation or xmp_orientation or 1


def _rewrite_vp8x(body: memoryview, has_icc: bool, has_exif: bool) -> bytes:
    flags = body[0] & ~(_FLAG_XMP | _FLAG_EXIF | _FLAG_ICC)
    flags |= (_FLAG_ICC if has_icc else 0) | (_FLAG_EXIF if has_exif else 0)
    return _chunk_bytes(b"VP8X", bytes([flags]) + bytes(body[1:10]))


def _first_image(data: bytes) -> bytes | None:
    return next((c.fourcc for c in iter_chunks(data) if c.fourcc in (b"VP8 ", b"VP8L", b"ANMF")), None)


def _vp8x_for_simple(chunk: Chunk) -> bytes:
    """The VP8X header of a simple WebP's one image chunk: its canvas size, and the alpha
    flag when a lossless image says it uses alpha."""
    size = _dimensions(chunk)
    if chunk.fourcc not in (b"VP8 ", b"VP8L") or size is None:
        raise LengthNotPreserved("the cleaned WebP has no image header to extend, so the original length cannot be kept")
    alpha = chunk.fourcc == b"VP8L" and (int.from_bytes(chunk.data[1:5], "little") >> 28) & 1
    flags = _FLAG_ALPHA if alpha else 0
    body = bytes([flags, 0, 0, 0]) + (size[0] - 1).to_bytes(3, "little") + (size[1] - 1).to_bytes(3, "little")
    return _chunk_bytes(b"VP8X", body)


class WebP(ImageFormat):
    name = "webp"
    mime = "image/webp"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"

    def read_header(self, data: bytes) -> Header:
        chunks = list(iter_chunks(data))
        size = next(filter(None, map(_dimensions, chunks)), None)
        if size is None or not all(size):
            raise MalformedImage("WebP has no readable image header")
        frames = sum(chunk.fourcc == b"ANMF" for chunk in chunks) or 1
        return Header(size[0], size[1], frames)

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        chunks = list(iter_chunks(data))
        orientation = _orientation(chunks)
        view, removed, body = memoryview(data), set(), []
        has_icc = keep_icc and any(chunk.fourcc == b"ICCP" and _readable_icc(chunk) for chunk in chunks)
        for chunk in chunks:
            if chunk.fourcc == b"VP8X":
                body.append(_rewrite_vp8x(chunk.data, has_icc, orientation != 1))
            elif chunk.fourcc == b"ICCP" and keep_icc:
                body.append(_neutral_iccp_chunk(bytes(chunk.data)))
            elif chunk.fourcc in _IMAGE_CHUNKS:
                body.append(view[chunk.start : chunk.end])
            elif chunk.fourcc == b"EXIF":
                removed |= exif.exif_categories(bytes(chunk.data))
            else:
                removed.add(_CATEGORY.get(chunk.fourcc, "private-chunks"))
        if orientation != 1:
            if chunks[0].fourcc != b"VP8X":
                raise MalformedImage("WebP declares an orientation without an extended (VP8X) header")
            body.append(_chunk_bytes(b"EXIF", exif.minimal_orientation_exif(orientation)))
        if _riff_end(data) < len(data):
            removed.add("trailer")
        payload = b"".join([b"WEBP", *body])
        return Stripped(b"RIFF" + struct.pack("<I", len(payload)) + payload, frozenset(removed), orientation)

    def findings(self, data: bytes) -> list[str]:
        found = []
        chunks = list(iter_chunks(data))
        for chunk in chunks:
            if chunk.fourcc in _IMAGE_CHUNKS or chunk.fourcc == b"VP8X":
                continue
            if chunk.fourcc == b"ICCP" and _readable_icc(chunk) and icc.is_neutral(bytes(chunk.data)):
                continue
            if chunk.fourcc == b"EXIF" and exif.is_minimal_orientation_exif(bytes(chunk.data)):
                continue
            if chunk.fourcc == FILLER and not bytes(chunk.data).strip(b"\x00"):
                continue
            found.append(f"chunk {chunk.fourcc.decode(errors='replace')!r} ({len(chunk.data)} bytes) at byte {chunk.start}")
        if chunks and chunks[0].fourcc == b"VP8X":
            flags = chunks[0].data[0]
            if flags & _FLAG_XMP:
                found.append("VP8X header still announces XMP")
            if bool(flags & _FLAG_EXIF) != any(chunk.fourcc == b"EXIF" for chunk in chunks):
                found.append("VP8X header's EXIF flag does not match the chunks")
        if _riff_end(data) != len(data):
            found.append(f"{len(data) - _riff_end(data)} bytes after the RIFF container")
        return found

    def pad_to(self, data: bytes, length: int) -> bytes:
        """A zero-filled unknown chunk at the end of the RIFF payload, and the RIFF size made
        to match. The simple format (a lone VP8/VP8L chunk) may hold no other chunk, so it is
        first given the VP8X header of the extended format (18 bytes more)."""
        gap = check_gap(self.name, data, length)
        if not gap:
            return data
        chunks = list(iter_chunks(data))
        header = b""
        if chunks[0].fourcc != b"VP8X":
            header = _vp8x_for_simple(chunks[0])
        room = gap - len(header) - _CHUNK_HEADER
        if room < 0 or gap % 2:
            needed = len(header) + _CHUNK_HEADER
            raise LengthNotPreserved(
                f"the cleaned WebP is {gap} bytes shorter than the original; a filler chunk needs an even "
                f"number of bytes, at least {needed}, so the original length cannot be kept"
            )
        payload = b"WEBP" + header + data[12:_riff_end(data)] + FILLER + struct.pack("<I", room) + bytes(room)
        return b"RIFF" + struct.pack("<I", len(payload)) + payload

    def encode_attempts(self, pixels: Image.Image, source: bytes, icc: bytes | None):
        yield self.encode(pixels, source, icc), None
        if _first_image(source) != b"VP8L":
            for quality in (80, 70, 60, 50, 40, 30):
                yield self.encode(pixels, source, icc, quality), None

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None, quality: int = 90) -> bytes:
        first_image = next((c.fourcc for c in iter_chunks(source) if c.fourcc in (b"VP8 ", b"VP8L", b"ANMF")), None)
        options = {"lossless": True} if first_image == b"VP8L" else {"quality": quality, "method": 4}
        if icc:
            options["icc_profile"] = icc
        if pixels.mode not in ("RGB", "RGBA"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        buffer = io.BytesIO()
        pixels.save(buffer, "WEBP", exif=b"", xmp=b"", **options)
        return buffer.getvalue()

    def encode_frames(self, frames: list[Image.Image], source: bytes, icc: bytes | None, durations: list[int], loop: int | None) -> bytes:
        """An animated WebP from full frames, with their timing and loop count, no EXIF/XMP."""
        lossless = any(c.fourcc == b"ANMF" and bytes(c.data[16:20]) == b"VP8L" for c in iter_chunks(source))
        options = {"lossless": True} if lossless else {"quality": 90, "method": 4}
        if icc:
            options["icc_profile"] = icc
        frames = [frame if frame.mode in ("RGB", "RGBA") else frame.convert("RGBA") for frame in frames]
        buffer = io.BytesIO()
        frames[0].save(
            buffer, "WEBP", save_all=True, append_images=frames[1:], duration=durations, loop=loop or 0,
            exif=b"", xmp=b"", **options,
        )  # fmt: skip
        return buffer.getvalue()


def _readable_icc(chunk) -> bool:
    try:
        icc.neutralise(bytes(chunk.data))
    except icc.DamagedProfile:
        return False
    return True


def _neutral_iccp_chunk(profile: bytes) -> bytes:
    """The ICCP chunk with its profile's text neutral, same size; empty (dropped) when the
    profile cannot be read."""
    try:
        return _chunk_bytes(b"ICCP", icc.neutralise(profile))
    except icc.DamagedProfile:
        return b""
