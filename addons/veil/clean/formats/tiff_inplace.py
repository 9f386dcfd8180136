"""Lossless TIFF cleaning in place: every offset stays where it is.

Each page's directory keeps only the tags a decoder needs (tiff.DECODE_TAGS), written
back in tag order at the start of the same directory with a smaller entry count, the
next-page pointer moved up behind them; the colour profile's text is neutralised in
place (icc.py keeps its length). Then every byte no kept structure points at is
overwritten with zeros: the dropped entries and their values (EXIF and GPS directories,
XMP, IPTC, maker notes, SubIFD previews and their pixels) and any gap between
structures. The pixel data is not touched, so every page decodes to the same pixels,
and the file keeps its length, which a declared size needs.

The verifier uses `covered` the other way round: in a clean TIFF, every byte outside
what the directories point at is zero (Veil's length filler included: zeros appended).
"""

import struct

from ..errors import MalformedImage
from . import icc

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
# Compressions whose data is found through strips or tiles alone: none, CCITT, LZW,
# Adobe and old Deflate, PackBits. Old-style JPEG (6) points at its data through tags
# Veil drops; for JPEG (7) exiftool names a page's only strip "PreviewImage", which
# cannot be told from a real preview: both are re-encoded instead (losslessly, Deflate).
_SELF_CONTAINED_COMPRESSIONS = {1, 2, 3, 4, 5, 8, 32773, 32946}
_DATA_TAGS = ((273, 279), (324, 325))  # (StripOffsets, StripByteCounts), (TileOffsets, TileByteCounts)
_COMPRESSION_TAG, _ICC_TAG = 259, 34675
_HEADER = 8

Entries = dict[int, tuple[int, int, int]]  # tag -> (type, count, offset of the 4-byte value field)


class NotInPlace(Exception):
    """A TIFF whose pixel data cannot be located from the kept tags alone."""


# How many values a kept tag may have. A count is also a length: a kept tag whose count was
# raised (found by fuzzing: ImageWidth with 127 values) would point past its own value at
# other tags' text, and `covered` would keep those bytes. Tags with one value per sample
# may have up to 16; the rationals of colour description have their fixed counts; strips,
# tiles and the colour map are bounded by their own checks.
_SAMPLE_TAGS = {258, 280, 281, 338, 339, 340, 341}
_FIXED_COUNTS = {318: 2, 319: 6, 529: 3, 530: 2, 532: 6}
_UNBOUNDED = {273, 279, 320, 324, 325, 34675}


def _check_counts(entries: Entries) -> None:
    for tag, (_, count, _) in entries.items():
        if tag in _UNBOUNDED:
            continue
        allowed = 16 if tag in _SAMPLE_TAGS else _FIXED_COUNTS.get(tag, 1)
        if count > allowed:
            raise NotInPlace(f"TIFF tag {tag} has {count} values where a decoder reads at most {allowed}")


def _value_range(data: bytes, order: str, entry: tuple[int, int, int]) -> tuple[int, int] | None:
    """Where an entry's value lies when it does not fit in the entry itself."""
    typ, count, field = entry
    size = _TYPE_SIZES.get(typ, 1) * count
    if size <= 4:
        return None
    start = struct.unpack_from(order + "I", data, field)[0]
    if start + size > len(data):
        raise MalformedImage(f"a TIFF tag's value lies past the end of the file (byte {start}, {size} bytes)")
    return start, start + size


def _numbers(data: bytes, order: str, entry: tuple[int, int, int]) -> list[int]:
    typ, count, field = entry
    if typ not in (3, 4):
        raise MalformedImage("TIFF strip or tile offsets are not SHORT or LONG values")
    where = _value_range(data, order, entry)
    start = where[0] if where else field
    return list(struct.unpack_from(f"{order}{count}{'H' if typ == 3 else 'I'}", data, start))


def _pixel_ranges(data: bytes, order: str, entries: Entries) -> list[tuple[int, int]]:
    for offsets_tag, counts_tag in _DATA_TAGS:
        if offsets_tag in entries:
            if counts_tag not in entries:
                raise NotInPlace("the page's data has no byte counts")
            offsets, counts = _numbers(data, order, entries[offsets_tag]), _numbers(data, order, entries[counts_tag])
            if len(offsets) != len(counts) or any(o + c > len(data) for o, c in zip(offsets, counts)):
                raise MalformedImage("TIFF strips or tiles lie past the end of the file")
            return [(o, o + c) for o, c in zip(offsets, counts)]
    raise NotInPlace("the page has neither strips nor tiles")


def covered(data: bytes, order: str, ifds: list[tuple[int, Entries]]) -> list[tuple[int, int]]:
    """Every byte range the header and the directories point at, as written."""
    ranges = [(0, _HEADER)]
    for offset, entries in ifds:
        ranges.append((offset, offset + 2 + 12 * len(entries) + 4))
        ranges += [r for r in (_value_range(data, order, entry) for entry in entries.values()) if r]
        ranges += _pixel_ranges(data, order, entries)
    return ranges


def _gaps(length: int, ranges: list[tuple[int, int]]):
    """The (start, end) stretches of a file of `length` bytes that no range covers."""
    at = 0
    for start, end in sorted(ranges) + [(length, length)]:
        if start > at:
            yield at, min(start, length)
        at = max(at, end)


def zero_outside(buffer: bytearray, ranges: list[tuple[int, int]]) -> None:
    for start, end in _gaps(len(buffer), ranges):
        buffer[start:end] = bytes(end - start)


def uncovered_bytes(data: bytes, ranges: list[tuple[int, int]]) -> int:
    """How many bytes outside `ranges` are not zero."""
    return sum((end - start) - data.count(0, start, end) for start, end in _gaps(len(data), ranges))


def strip(data: bytes, order: str, ifds: list[tuple[int, Entries]], keep_tags: set[int], keep_icc: bool) -> tuple[bytes, bool]:
    """The cleaned bytes, and whether a colour profile was dropped."""
    out, kept_ifds, icc_dropped = bytearray(data), [], False
    for offset, entries in ifds:
        compression = _numbers(data, order, entries[_COMPRESSION_TAG])[0] if _COMPRESSION_TAG in entries else 1
        if compression not in _SELF_CONTAINED_COMPRESSIONS:
            raise NotInPlace(f"TIFF compression {compression} keeps its data outside the strips")
        kept = {tag: entry for tag, entry in entries.items() if tag in keep_tags}
        _check_counts(kept)
        if _ICC_TAG in kept and not (keep_icc and _neutralise_profile(data, out, order, kept[_ICC_TAG])):
            del kept[_ICC_TAG]
            icc_dropped = True
        kept_ifds.append((offset, _rewrite_directory(data, out, order, offset, entries, kept)))
    zero_outside(out, covered(bytes(out), order, kept_ifds))
    return bytes(out), icc_dropped


def _rewrite_directory(data: bytes, out: bytearray, order: str, offset: int, entries: Entries, kept: Entries) -> Entries:
    """The kept entries moved to the front of the directory, in tag order; the count and
    the next-directory pointer follow. Returns the entries at their new places."""
    next_ifd = data[offset + 2 + 12 * len(entries) : offset + 6 + 12 * len(entries)]
    moved: Entries = {}
    struct.pack_into(order + "H", out, offset, len(kept))
    for index, tag in enumerate(sorted(kept)):
        typ, count, field = kept[tag]
        at = offset + 2 + 12 * index
        out[at : at + 12] = data[field - 8 : field + 4]
        moved[tag] = (typ, count, at + 8)
    out[offset + 2 + 12 * len(kept) : offset + 6 + 12 * len(kept)] = next_ifd
    return moved


def _neutralise_profile(data: bytes, out: bytearray, order: str, entry: tuple[int, int, int]) -> bool:
    """The ICC profile's text made neutral in place; bytes after its declared size zeroed.
    False when it is not a readable profile (the caller drops the tag)."""
    where = _value_range(data, order, entry)
    if where is None:
        return False
    start, end = where
    declared = int.from_bytes(data[start : start + 4], "big")
    if not 132 <= declared <= end - start:
        return False
    try:
        out[start : start + declared] = icc.neutralise(data[start : start + declared])
    except icc.DamagedProfile:
        return False
    out[start + declared : end] = bytes(end - start - declared)
    return True
