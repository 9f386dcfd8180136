"""Where a cleaned image may legitimately hold any bytes at all: the structures that carry
its pixels (and its colour profile, which Veil keeps by design).

A mutation can move a seed's secret into such a structure: a corrupted length makes a
JPEG quantisation table swallow the comment after it, a deleted run slides a trailer
into a BMP raster. Veil keeps decoding data verbatim, and no metadata reader shows those
bytes, so a secret found there is not metadata that passed through. A secret anywhere
else in a cleaned image is.

These walkers are written from the format specifications for this check alone, apart
from Veil's own: a disagreement between the two is exactly what the fuzz tests look for.
"""

import re
import struct

_JPEG_DECODING = {0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDA} | set(range(0xC0, 0xD0)) - {0xC8}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_PNG_PIXEL_CHUNKS = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD",
    b"iCCP", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
}  # fmt: skip
_WEBP_PIXEL_CHUNKS = {b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every pixel-carrying structure in `data`, as far as it can be
    walked; [] for formats whose outputs Veil writes from decoded pixels."""
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data)
    return []


def inside(found_at: int, length: int, carriers: list[tuple[int, int]]) -> bool:
    return any(start <= found_at and found_at + length <= end for start, end in carriers)


def _jpeg(data: bytes) -> list[tuple[int, int]]:
    found, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xDA:
            following = _JPEG_NEXT_MARKER.search(data, end)
            end = following.start() if following else len(data)
        is_icc = 0xE2 == marker and data[pos + 4 : pos + 16] == b"ICC_PROFILE\x00"
        if marker in _JPEG_DECODING or is_icc:
            found.append((pos, end))
        pos = end
    return found


def _png(data: bytes) -> list[tuple[int, int]]:
    found, pos = [], 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if kind in _PNG_PIXEL_CHUNKS:
            found.append((pos, min(end, len(data))))
        if kind == b"IEND":
            break
        pos = end
    return found


def _webp(data: bytes) -> list[tuple[int, int]]:
    found, pos, riff_end = [], 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= riff_end:
        kind, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)
        if kind in _WEBP_PIXEL_CHUNKS:
            found.append((pos, min(end, riff_end)))
        pos = end
    return found


def _gif(data: bytes) -> list[tuple[int, int]]:
    def table(flags: int) -> int:
        return 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0

    def sub_blocks(pos: int) -> int:
        while pos < len(data) and data[pos]:
            pos += 1 + data[pos]
        return pos + 1

    if len(data) < 13:
        return []
    pos = 13 + table(data[10])
    found = [(0, pos)]
    while pos < len(data) and data[pos] != 0x3B:
        if data[pos] == 0x2C and pos + 10 <= len(data):
            end = sub_blocks(pos + 10 + table(data[pos + 9]) + 1)
            found.append((pos, end))
        elif data[pos] == 0x21 and pos + 2 <= len(data):
            end = sub_blocks(pos + 2)
            if data[pos + 1] == 0xF9 or data[pos + 3 : pos + 14] in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                found.append((pos, end))
        else:
            break
        pos = end
    return found
