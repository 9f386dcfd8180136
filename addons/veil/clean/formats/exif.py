"""Just enough TIFF/EXIF reading to say what a metadata block holds, plus the one
EXIF block Veil ever writes: a single Orientation tag.

Every reader here is defensive: hostile files carry bogus offsets and counts, and a
block we cannot read is still dropped, so a parse failure only means "no details".
"""

import re
import struct

ORIENTATION_TAG = 0x0112
_GPS_IFD_TAG = 0x8825
_EXIF_IFD_TAG = 0x8769
_MAKERNOTE_TAG = 0x927C
_IDENTITY_TAGS = {
    0x010F: "camera",  # Make
    0x0110: "camera",  # Model
    0x013B: "owner",  # Artist
    0x8298: "owner",  # Copyright
    0xA430: "owner",  # CameraOwnerName
    0xA431: "serial-number",  # BodySerialNumber
    0xA435: "serial-number",  # LensSerialNumber
}
_MAX_IFD_ENTRIES = 1024

EXIF_APP1_PREFIX = b"Exif\x00\x00"


def tiff_payload(block: bytes) -> bytes:
    """EXIF blocks come with or without the JPEG-style 'Exif\\0\\0' prefix; strip it."""
    return block[6:] if block.startswith(EXIF_APP1_PREFIX) else block


def _byte_order(tiff: bytes) -> str | None:
    if tiff[:4] == b"MM\x00*":
        return ">"
    if tiff[:4] == b"II*\x00":
        return "<"
    return None


def _read_ifd(tiff: bytes, order: str, offset: int) -> tuple[dict[int, tuple[int, int, bytes]], int]:
    """Entries of one IFD as {tag: (type, count, raw 4-byte value field)} and the next-IFD offset."""
    if offset < 8 or offset + 2 > len(tiff):
        return {}, 0
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    count = min(count, _MAX_IFD_ENTRIES, (len(tiff) - offset - 2) // 12)
    entries = {}
    for i in range(count):
        tag, typ, n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
        entries[tag] = (typ, n, tiff[offset + 10 + 12 * i : offset + 14 + 12 * i])
    end = offset + 2 + 12 * count
    next_ifd = struct.unpack_from(order + "I", tiff, end)[0] if end + 4 <= len(tiff) else 0
    return entries, next_ifd


def _short_value(order: str, entry: tuple[int, int, bytes]) -> int | None:
    typ, n, raw = entry
    if typ == 3 and n >= 1:  # SHORT, stored inline
        return struct.unpack(order + "H", raw[:2])[0]
    if typ == 4 and n >= 1:  # LONG: some writers misuse it for Orientation
        return struct.unpack(order + "I", raw)[0]
    return None


def _long_value(order: str, entry: tuple[int, int, bytes]) -> int:
    return struct.unpack(order + "I", entry[2])[0]


def _ifd0(tiff: bytes) -> tuple[str, dict, int, int] | None:
    """(byte order, IFD0 entries, IFD0 offset, next-IFD offset), or None if unreadable."""
    order = _byte_order(tiff)
    if order is None or len(tiff) < 8:
        return None
    offset = struct.unpack_from(order + "I", tiff, 4)[0]
    entries, next_ifd = _read_ifd(tiff, order, offset)
    return order, entries, offset, next_ifd


def orientation_from_exif(block: bytes) -> int | None:
    """The Orientation (1-8) in IFD0, or None when absent or unreadable."""
    parsed = _ifd0(tiff_payload(block))
    if parsed is None or ORIENTATION_TAG not in parsed[1]:
        return None
    value = _short_value(parsed[0], parsed[1][ORIENTATION_TAG])
    return value if value in range(1, 9) else None


_XMP_ORIENTATION = re.compile(rb"tiff:Orientation\s*(?:=\s*[\"']|>)\s*([1-8])")


def orientation_from_xmp(xmp: bytes) -> int | None:
    """tiff:Orientation written as an attribute or as an element."""
    match = _XMP_ORIENTATION.search(xmp)
    return int(match.group(1)) if match else None


def exif_categories(block: bytes) -> set[str]:
    """What kinds of personal data an EXIF block held, for the report. A block holding
    nothing but Orientation is re-written, not removed, so it reports nothing."""
    if is_minimal_orientation_exif(block):
        return set()
    found = {"exif"}
    tiff = tiff_payload(block)
    parsed = _ifd0(tiff)
    if parsed is None:
        return found
    order, ifd0, _, ifd1_offset = parsed
    try:
        found.update(_IDENTITY_TAGS[tag] for tag in ifd0 if tag in _IDENTITY_TAGS)
        if _GPS_IFD_TAG in ifd0:
            found.add("gps")
        if ifd1_offset:
            found.add("thumbnail")
        if _EXIF_IFD_TAG in ifd0:
            exif_ifd, _ = _read_ifd(tiff, order, _long_value(order, ifd0[_EXIF_IFD_TAG]))
            found.update(_IDENTITY_TAGS[tag] for tag in exif_ifd if tag in _IDENTITY_TAGS)
            if _MAKERNOTE_TAG in exif_ifd:
                found.add("makernote")
    except struct.error:
        pass  # bogus offsets: the block is dropped whole anyway
    return found


def minimal_orientation_exif(orientation: int) -> bytes:
    """A TIFF block holding IFD0 with the Orientation tag and nothing else."""
    header = b"MM\x00*" + struct.pack(">I", 8)
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", ORIENTATION_TAG, 3, 1, orientation, 0)
    return header + ifd + struct.pack(">I", 0)


def is_minimal_orientation_exif(block: bytes) -> bool:
    """True only for a block whose sole content is one IFD with a valid Orientation tag."""
    tiff = tiff_payload(block)
    parsed = _ifd0(tiff) if len(tiff) <= 64 else None
    if parsed is None:
        return False
    _, ifd0, ifd0_offset, next_ifd = parsed
    return (
        set(ifd0) == {ORIENTATION_TAG}
        and next_ifd == 0
        and orientation_from_exif(block) is not None
        and len(tiff) <= ifd0_offset + 2 + 12 + 4
    )
