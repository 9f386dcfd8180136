"""Where the pieces of a seed are: its segments, chunks or boxes, their length fields and
the fields that declare its dimensions. The mutations use this to make damage a parser
has to think about (a duplicated EXIF segment, a chunk that claims 4 GB, a 65535x65535
header), not only random noise that the first check throws out.

Seeds are valid files, so Veil's own walkers can find the split points; the mutated
bytes are judged by checks.py, which does not rely on them.
"""

import functools
import re
import struct
from dataclasses import dataclass

from veil.clean.formats import gif, isobmff, jpeg, png, sniff, webp


@dataclass(frozen=True)
class Field:
    """An integer stored at `offset`: `width` bytes, big- or little-endian."""

    offset: int
    width: int
    order: str  # "big" or "little"

    def patch(self, data: bytes, value: int) -> bytes:
        value %= 1 << (8 * self.width)
        return data[: self.offset] + value.to_bytes(self.width, self.order) + data[self.offset + self.width :]


@dataclass(frozen=True)
class Piece:
    """One segment, chunk, block or box: bytes [start, end), its length field if it has one."""

    label: str
    start: int
    end: int
    length: Field | None = None


@dataclass(frozen=True)
class Layout:
    format: str
    head: int  # bytes before the first piece (signature, file header)
    pieces: tuple[Piece, ...]
    dimensions: tuple[Field, ...]  # fields declaring width or height
    crc_chunks: bool = False  # PNG: chunk CRCs can be recomputed after a mutation
    riff_size: Field | None = None  # WebP: the RIFF size can be made true again


@functools.cache
def layout(data: bytes) -> Layout:
    name = sniff(data).name
    return _LAYOUTS[name](data)


def _jpeg(data: bytes) -> Layout:
    pieces, dims = [], []
    for segment in jpeg.iter_segments(data):
        if segment.marker in (jpeg.SOI, jpeg.EOI):
            continue
        has_length = segment.marker not in jpeg._STANDALONE and segment.marker != jpeg.JUNK
        length = Field(segment.start + 2, 2, "big") if has_length else None
        pieces.append(Piece(f"0x{segment.marker:02X}", segment.start, segment.end, length))
        if segment.marker in jpeg.SOF_MARKERS:
            dims += [Field(segment.start + 5, 2, "big"), Field(segment.start + 7, 2, "big")]
    return Layout("jpeg", 2, tuple(pieces), tuple(dims))


def _png(data: bytes) -> Layout:
    pieces = [Piece(chunk.kind.decode(), chunk.start, chunk.end, Field(chunk.start, 4, "big")) for chunk in png.iter_chunks(data)]
    dims = (Field(16, 4, "big"), Field(20, 4, "big"))  # IHDR width, height
    return Layout("png", 8, tuple(pieces), dims, crc_chunks=True)


def _webp(data: bytes) -> Layout:
    pieces, dims = [], []
    for chunk in webp.iter_chunks(data):
        pieces.append(Piece(chunk.fourcc.decode(errors="replace"), chunk.start, chunk.end, Field(chunk.start + 4, 4, "little")))
        body = chunk.start + 8
        if chunk.fourcc == b"VP8X":
            dims += [Field(body + 4, 3, "little"), Field(body + 7, 3, "little")]
        elif chunk.fourcc == b"VP8 ":
            dims += [Field(body + 6, 2, "little"), Field(body + 8, 2, "little")]
        elif chunk.fourcc == b"VP8L":
            dims += [Field(body + 1, 4, "little")]  # 14 bits each, packed
    return Layout("webp", 12, tuple(pieces), tuple(dims), riff_size=Field(4, 4, "little"))


def _gif(data: bytes) -> Layout:
    pieces, dims = [], [Field(6, 2, "little"), Field(8, 2, "little")]
    for block in gif.iter_blocks(data):
        if block.kind == "screen":
            continue
        length = Field(block.start + 2, 1, "little") if block.kind != "image" and block.kind != "trailer" else None
        pieces.append(Piece(block.kind, block.start, block.end, length))
        if block.kind == "image":
            dims += [Field(block.start + 5, 2, "little"), Field(block.start + 7, 2, "little")]
    return Layout("gif", pieces[0].start if pieces else len(data), tuple(pieces), tuple(dims))


def _tiff(data: bytes) -> Layout:
    """Pieces are IFD entries (12 bytes each); the 'length' is the entry's value count."""
    order = "little" if data[:2] == b"II" else "big"
    fmt = "<" if order == "little" else ">"
    pieces, dims = [], []
    offset, seen = struct.unpack_from(fmt + "I", data, 4)[0], set()
    while offset and offset not in seen and offset + 2 <= len(data):
        seen.add(offset)
        (count,) = struct.unpack_from(fmt + "H", data, offset)
        for index in range(count):
            entry = offset + 2 + 12 * index
            tag, kind = struct.unpack_from(fmt + "HH", data, entry)
            pieces.append(Piece(f"tag {tag}", entry, entry + 12, Field(entry + 4, 4, order)))
            if tag in (256, 257):
                dims.append(Field(entry + 8, 2 if kind == 3 else 4, order))
        end = offset + 2 + 12 * count
        offset = struct.unpack_from(fmt + "I", data, end)[0] if end + 4 <= len(data) else 0
    return Layout("tiff", 8, tuple(pieces), tuple(dims))


def _iso(data: bytes) -> Layout:
    """Top-level boxes and the boxes inside meta; dimensions are every ispe box's."""
    pieces, dims = [], []
    for box in isobmff.iter_boxes(data, 0, len(data)):
        pieces.append(Piece(box.kind.decode(errors="replace"), box.start, box.end, Field(box.start, 4, "big")))
        if box.kind == b"meta":
            for inner in isobmff.iter_boxes(data, box.body + 4, box.end):
                pieces.append(Piece("meta/" + inner.kind.decode(errors="replace"), inner.start, inner.end, Field(inner.start, 4, "big")))
    for found in re.finditer(rb"ispe", data):
        at = found.end() + 4  # after the full-box version and flags
        dims += [Field(at, 4, "big"), Field(at + 4, 4, "big")]
    return Layout(sniff(data).name, 0, tuple(pieces), tuple(dims))


def _bmp(data: bytes) -> Layout:
    return Layout("bmp", 0, (Piece("file header", 0, 14, Field(2, 4, "little")), Piece("info header", 14, 54)), (Field(18, 4, "little"), Field(22, 4, "little")))


def _pnm(data: bytes) -> Layout:
    """PNM declares its size in text; the 'dimension fields' are the digits, patched as text
    by mutations.huge_dimensions."""
    return Layout("pnm", 0, (), ())


_LAYOUTS = {"jpeg": _jpeg, "png": _png, "webp": _webp, "gif": _gif, "tiff": _tiff, "heif": _iso, "avif": _iso, "bmp": _bmp, "pnm": _pnm}
