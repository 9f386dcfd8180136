"""Lossless HEIF/AVIF cleaning: the file is written anew from its item tables, keeping
only what shows the picture.

Kept: the primary image item, the tiles a `grid` primary is built from (iPhone photos
are 512x512 tiles), and the primary's alpha plane. Dropped from every table (iinf, iloc,
iref, ipma) and from the media data: EXIF and XMP items, thumbnails, depth maps, HDR gain
maps, other images, and any property that is not about decoding or display.

Why rewrite rather than zero the payloads in place: an item that stays listed in iinf
is still reported by readers (exiftool shows an empty Exif item, and an item table that
lists a thumbnail with zeros for data makes decoders fail on it), and zeros would leave
the file as long as the original, which preserve_length does not need: the output is
padded back to any length with zeros at the end of its mdat.

The output is ftyp, meta, mdat. The kept items' bytes are copied unchanged, in their
original order, into one mdat (grid descriptors into idat), and every iloc offset is
written for the new layout: the primary image's coded bytes are identical, so it decodes
to identical pixels. Colour profiles are kept with their text neutralised (icc.py).
"""

import bisect
import struct
from dataclasses import dataclass

from ..errors import LengthNotPreserved
from . import heif_items, isobmff
from .base import check_gap, icc_profile
from .heif_items import (
    DISPLAY_PROPERTIES,
    PICTURE_ITEM_TYPES,
    PICTURE_REFERENCES,
    Meta,
    NotRewritable,
)

_ICC_COLOUR_TYPES = (b"prof", b"rICC")
_WIDE_ID = 0xFFFF  # item IDs above this need the 32-bit versions of the tables


@dataclass(frozen=True)
class Plan:
    """What the rewritten file holds."""

    brands: tuple[bytes, bytes, tuple[bytes, ...]]  # major brand, minor version, compatible brands
    meta: Meta
    items: list[int]  # kept item IDs, in the original order
    properties: list[bytes]
    associations: dict[int, list[tuple[int, bool]]]
    removed: frozenset[str]


def kept_items(meta: Meta) -> list[int]:
    """The primary image, the tiles it is made of and its alpha plane, in iinf order."""
    keep = heif_items.picture_items(meta)
    for item_id in keep:
        item = meta.items[item_id]
        if item.type not in PICTURE_ITEM_TYPES:
            raise NotRewritable(f"the picture is built from a {item.type.decode(errors='replace')!r} item")
        if item_id not in meta.locations:
            raise NotRewritable(f"HEIF image item {item_id} has no data")
    return [item_id for item_id in meta.items if item_id in keep]


def clean_property(box: bytes, keep_icc: bool) -> tuple[bytes | None, set[str]]:
    """The property as it may stay (None: dropped) and what dropping or changing it removed.
    Anything not about decoding or display (a user description 'udes', vendor boxes, 'free')
    is dropped; the caller re-encodes instead when the file marks such a property essential."""
    kind = box[4:8]
    if kind == b"free":
        return None, set()
    if kind not in DISPLAY_PROPERTIES:
        return None, {"private-chunks"}
    if kind != b"colr" or box[8:12] == b"nclx":
        return box, set()
    if box[8:12] not in _ICC_COLOUR_TYPES:
        return None, {"private-chunks"}
    profile = icc_profile(box[12:]) if keep_icc else None
    if profile is None:
        return None, {"icc"}
    return _box(b"colr", box[8:12], profile), set()


def plan(data: bytes, meta: Meta, keep_icc: bool, removed: set[str]) -> Plan:
    """Decide what stays. `removed` holds the categories the caller found in the items."""
    items = kept_items(meta)
    properties, associations, new_index = [], {}, {}
    removed = set(removed) | _dropped_boxes(meta)
    for item_id in items:
        associations[item_id] = []
        for index, essential in meta.associations.get(item_id, []):
            if index not in new_index:
                kept, categories = clean_property(meta.properties[index - 1], keep_icc)
                removed |= categories
                new_index[index] = None if kept is None else len(properties) + 1
                properties += [kept] if kept is not None else []
            if new_index[index] is not None:
                associations[item_id].append((new_index[index], essential))
            elif essential and meta.property_kind(index) != b"colr":  # colours may go: decoding does not need them
                raise NotRewritable(f"HEIF item {item_id} needs a {meta.property_kind(index)!r} property Veil does not keep")
    return Plan(_brands(data, meta), meta, items, properties, associations, frozenset(removed))


_REWRITTEN_META_CHILDREN = {b"hdlr", b"dinf", b"pitm", b"iinf", b"iloc", b"iref", b"iprp", b"idat", b"grpl"}


def _dropped_boxes(meta: Meta) -> set[str]:
    """Boxes that are not rewritten and could hold data: reported as private chunks."""
    unknown_top = [box for box in meta.top if box.kind not in (b"ftyp", b"meta", b"mdat", b"free", b"skip")]
    unknown_meta = [box for box in meta.children if box.kind not in _REWRITTEN_META_CHILDREN]
    return {"private-chunks"} if unknown_top or unknown_meta else set()


def _brands(data: bytes, meta: Meta) -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """ftyp's brands, cut to the well-formed four-character codes (minor version cleared)."""
    ftyp = meta.top[0]
    major = data[ftyp.body : ftyp.body + 4]
    compatible = [data[p : p + 4] for p in range(ftyp.body + 8, ftyp.end - 3, 4)]
    codes = [brand for brand in dict.fromkeys(compatible) if all(c == 32 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 for c in brand)]
    return major, bytes(4), tuple(codes[:16])


def write(data: bytes, plan: Plan) -> bytes:
    """ftyp, meta, mdat: the kept items' bytes copied unchanged into fresh boxes."""
    meta = plan.meta
    file_extents = [e for i in plan.items if meta.locations[i].method == 0 for e in meta.locations[i].extents]
    idat_extents = [e for i in plan.items if meta.locations[i].method == 1 for e in meta.locations[i].extents]
    media, media_at = pack(data, file_extents)
    idat, idat_at = pack(meta.idat, idat_extents)
    ftyp = _box(b"ftyp", plan.brands[0], plan.brands[1], *plan.brands[2])

    def meta_box(media_start: int) -> bytes:
        locations = {i: _moved(meta.locations[i], media_at, idat_at, media_start) for i in plan.items}
        return _meta(plan, locations, idat)

    media_start = len(ftyp) + len(meta_box(0)) + 8  # the table's fields have fixed widths
    return ftyp + meta_box(media_start) + _box(b"mdat", media)


def pack(source: bytes, extents: list[tuple[int, int]]) -> tuple[bytes, dict[tuple[int, int], int]]:
    """The bytes the extents cover, each byte once and in the original order (extents that
    overlap share them), and where each extent now starts."""
    spans = heif_items.merged_ranges(extents)
    starts, new_starts, pieces, at = [], [], [], 0
    for start, end in spans:
        starts.append(start)
        new_starts.append(at)
        pieces.append(source[start:end])
        at += end - start
    moved = {}
    for offset, length in extents:
        span = bisect.bisect_right(starts, offset) - 1
        moved[(offset, length)] = new_starts[span] + offset - starts[span]
    return b"".join(pieces), moved


def _moved(location: heif_items.Location, media_at: dict, idat_at: dict, media_start: int) -> heif_items.Location:
    if location.method == 1:
        return heif_items.Location(1, tuple((idat_at[e], e[1]) for e in location.extents))
    return heif_items.Location(0, tuple((media_start + media_at[e], e[1]) for e in location.extents))


# --- box writers --------------------------------------------------------------------------


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big"), *parts)


def _meta(plan: Plan, locations: dict[int, heif_items.Location], idat: bytes) -> bytes:
    wide = max(plan.items) > _WIDE_ID
    children = [
        _full_box(b"hdlr", 0, 0, bytes(4), b"pict", bytes(12), b"\x00"),  # no handler name
        _DINF if any(box.kind == b"dinf" for box in plan.meta.children) else b"",  # optional: written only when there was one
        _full_box(b"pitm", int(wide), 0, _id(plan.meta.primary, wide)),
        _iinf(plan, wide),
        _iref(plan, wide),
        _iprp(plan, wide),
        _box(b"idat", idat) if idat else b"",
        _iloc(plan.items, locations, wide),
    ]
    return _full_box(b"meta", 0, 0, *children)


_DINF = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))  # "the data is in this file"


def _id(item_id: int, wide: bool) -> bytes:
    return item_id.to_bytes(4 if wide else 2, "big")


def _iinf(plan: Plan, wide: bool) -> bytes:
    """Item entries with their type and hidden flag only: no item names."""
    entries = [
        _full_box(b"infe", 3 if wide else 2, int(plan.meta.items[i].hidden), _id(i, wide), bytes(2), plan.meta.items[i].type, b"\x00")
        for i in plan.items
    ]
    return _full_box(b"iinf", 0, 0, struct.pack(">H", len(entries)), *entries)


def _iref(plan: Plan, wide: bool) -> bytes:
    kept = set(plan.items)
    refs = [ref for ref in plan.meta.refs if ref.kind in PICTURE_REFERENCES and ref.source in kept and set(ref.targets) <= kept]
    if not refs:
        return b""
    entries = [_box(ref.kind, _id(ref.source, wide), struct.pack(">H", len(ref.targets)), *(_id(t, wide) for t in ref.targets)) for ref in refs]
    return _full_box(b"iref", int(wide), 0, *entries)


def _iprp(plan: Plan, wide: bool) -> bytes:
    large = len(plan.properties) > 127  # property indices need 15 bits instead of 7
    entries = []
    for item_id in plan.items:
        associations = plan.associations[item_id]
        fields = b"".join(
            struct.pack(">H", (essential << 15) | index) if large else bytes([(essential << 7) | index]) for index, essential in associations
        )
        entries.append(_id(item_id, wide) + bytes([len(associations)]) + fields)
    ipma = _full_box(b"ipma", int(wide), int(large), struct.pack(">I", len(entries)), *entries)
    return _box(b"iprp", _box(b"ipco", *plan.properties), ipma)


def _iloc(items: list[int], locations: dict[int, heif_items.Location], wide: bool) -> bytes:
    """4-byte offsets and lengths, no base offsets; version 0 unless items live in idat
    (version 1 names the construction method) or have 32-bit IDs (version 2)."""
    version = 2 if wide else 1 if any(location.method for location in locations.values()) else 0
    entries = []
    for item_id in items:
        location = locations[item_id]
        extents = b"".join(struct.pack(">II", offset, length) for offset, length in location.extents)
        method = struct.pack(">H", location.method) if version else b""
        entries.append(_id(item_id, wide) + method + struct.pack(">HH", 0, len(location.extents)) + extents)
    count = struct.pack(">I" if wide else ">H", len(entries))
    return _full_box(b"iloc", version, 0, bytes([0x44, 0x00]), count, *entries)


# --- length ---------------------------------------------------------------------------------


def pad_to(name: str, data: bytes, length: int) -> bytes:
    """`data` grown to `length` bytes by zeros at the end of its last box, the mdat. No item
    points at them, so no reader sees them; the verifier checks that every mdat byte no
    item points at is zero. Any gap fits, even one too small for a box of its own."""
    gap = check_gap(name, data, length)
    if not gap:
        return data
    last = isobmff.iter_boxes(data, 0, len(data))[-1]
    if last.kind != b"mdat":
        raise LengthNotPreserved(f"the cleaned {name.upper()} image does not end with its media data, where Veil's filler goes")
    size = last.end - last.start + gap
    if struct.unpack_from(">I", data, last.start)[0] == 0:  # "to the end of the file": grows by itself
        header = data[last.start : last.body]
    elif last.header == 16:
        header = struct.pack(">I4sQ", 1, b"mdat", size)
    elif size <= 0xFFFFFFFF:
        header = struct.pack(">I4s", size, b"mdat")
    else:
        raise LengthNotPreserved(f"the {name.upper()} media data box cannot grow past 4 GB")
    return data[: last.start] + header + data[last.body :] + bytes(gap)
