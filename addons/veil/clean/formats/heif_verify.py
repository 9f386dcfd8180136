"""The verifier's view of a cleaned HEIF/AVIF: everything in the file must be needed to
show the primary image, and every byte that nothing points at must be zero.

Accepted: top-level ftyp, meta, mdat; in meta the item tables; image items that are the
primary, tiles of a kept grid, or the primary's alpha plane; the references between
them; decoding and display properties, with a colour profile whose text is neutral;
media bytes no item points at only when they are zeros (Veil's length filler, or what
an encoder left). Everything else is listed.
"""

from ..errors import MalformedImage
from . import heif_items, icc
from .heif_items import DISPLAY_PROPERTIES, PICTURE_ITEM_TYPES, PICTURE_REFERENCES, Meta

_ALLOWED_TOP = (b"ftyp", b"meta", b"mdat")
_ALLOWED_META_CHILDREN = {b"hdlr", b"dinf", b"pitm", b"iinf", b"iloc", b"iref", b"iprp", b"idat"}
# Item and handler names encoders write; any other name is text Veil did not write.
_ENCODER_NAMES = {b"", b"Color", b"Alpha", b"libavif"}


def findings(data: bytes) -> list[str]:
    try:
        meta = heif_items.read(data)
    except heif_items.NotRewritable as reason:
        return [f"a structure Veil does not write ({reason})"]
    except MalformedImage as error:  # bytes after the last box, tables pointing outside
        return [f"an unreadable structure ({error.reason})"]
    return [
        *_box_findings(meta),
        *_item_findings(meta),
        *_property_findings(meta),
        *_unreferenced_bytes(data, meta),
    ]


def _box_findings(meta: Meta) -> list[str]:
    found = [f"top-level box {box.kind.decode(errors='replace')!r} ({box.end - box.start} bytes)" for box in meta.top if box.kind not in _ALLOWED_TOP]
    found += [f"meta box {box.kind.decode(errors='replace')!r}" for box in meta.children if box.kind not in _ALLOWED_META_CHILDREN]
    if meta.handler_name not in _ENCODER_NAMES:
        found.append(f"a handler name of {len(meta.handler_name)} bytes")
    return found


def _item_findings(meta: Meta) -> list[str]:
    shown = heif_items.picture_items(meta)
    found = []
    for item_id, item in meta.items.items():
        kind = item.type.decode(errors="replace")
        if item.type not in PICTURE_ITEM_TYPES:
            found.append(f"item {item_id} of type {kind!r}" + (f" ({item.content_type.decode(errors='replace')})" if item.content_type else ""))
        elif item_id not in shown:
            found.append(f"image item {item_id} ({kind}) besides the picture: a thumbnail, depth or gain map, or another image")
        if item.name not in _ENCODER_NAMES:
            found.append(f"item {item_id} has a name of {len(item.name)} bytes")
    for ref in meta.refs:
        if ref.kind not in PICTURE_REFERENCES:
            found.append(f"{ref.kind.decode(errors='replace')} reference from item {ref.source}")
    return found


def _property_findings(meta: Meta) -> list[str]:
    found = []
    for index, box in enumerate(meta.properties, start=1):
        kind = box[4:8]
        if kind not in DISPLAY_PROPERTIES:
            found.append(f"item property {kind.decode(errors='replace')!r} ({len(box)} bytes)")
        elif kind == b"colr" and box[8:12] != b"nclx" and not _neutral_profile(box[12:]):
            found.append(f"colour property {index} is not a profile with neutral text")
    return found


def _neutral_profile(profile: bytes) -> bool:
    if int.from_bytes(profile[:4], "big") != len(profile):
        return False  # bytes after the profile, or a profile cut short
    try:
        return icc.is_neutral(profile)
    except icc.DamagedProfile:
        return False


def _unreferenced_bytes(data: bytes, meta: Meta) -> list[str]:
    """Media and idat bytes that no item points at must be zero."""
    found = []
    covered = heif_items.merged_ranges([e for loc in meta.locations.values() if loc.method == 0 for e in loc.extents])
    for box in meta.top:
        if box.kind == b"mdat" and _has_uncovered_data(data, box.body, box.end, covered):
            found.append(f"media data at bytes {box.body}-{box.end} that no image item points at")
    idat_covered = heif_items.merged_ranges([e for loc in meta.locations.values() if loc.method == 1 for e in loc.extents])
    if _has_uncovered_data(meta.idat, 0, len(meta.idat), idat_covered):
        found.append("idat bytes that no item points at")
    media = [(box.body, box.end) for box in meta.top if box.kind == b"mdat"]
    for item_id, location in meta.locations.items():
        if location.method == 0 and not all(any(s <= o and o + n <= e for s, e in media) for o, n in location.extents):
            found.append(f"item {item_id}'s data lies outside the media data box")
    return found


def _has_uncovered_data(data: bytes, start: int, end: int, covered: list[tuple[int, int]]) -> bool:
    at = start
    for span_start, span_end in covered:
        if span_end <= at or span_start >= end:
            continue
        if any(data[at:span_start]):
            return True
        at = max(at, span_end)
    return any(data[at:end])
