"""WebP: a RIFF container. Image chunks are copied verbatim; EXIF, XMP and unknown
chunks are dropped, and the VP8X flags are made to tell the truth afterwards."""

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from ..errors import MalformedImage
from . import exif
from .base import Header, ImageFormat, Stripped

_IMAGE_CHUNKS = {b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"}
_FLAG_ANIMATION, _FLAG_XMP, _FLAG_EXIF, _FLAG_ALPHA, _FLAG_ICC = 0x02, 0x04, 0x08, 0x10, 0x20
_CATEGORY = {b"EXIF": "exif", b"XMP ": "xmp", b"ICCP": "icc"}


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
        has_icc = keep_icc and any(chunk.fourcc == b"ICCP" for chunk in chunks)
        for chunk in chunks:
            if chunk.fourcc == b"VP8X":
                body.append(_rewrite_vp8x(chunk.data, has_icc, orientation != 1))
            elif chunk.fourcc in _IMAGE_CHUNKS or (chunk.fourcc == b"ICCP" and keep_icc):
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
            if chunk.fourcc in _IMAGE_CHUNKS or chunk.fourcc in (b"VP8X", b"ICCP"):
                continue
            if chunk.fourcc == b"EXIF" and exif.is_minimal_orientation_exif(bytes(chunk.data)):
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

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        first_image = next((c.fourcc for c in iter_chunks(source) if c.fourcc in (b"VP8 ", b"VP8L", b"ANMF")), None)
        options = {"lossless": True} if first_image == b"VP8L" else {"quality": 90, "method": 4}
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
