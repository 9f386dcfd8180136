"""The item tables of a HEIF/AVIF meta box, read whole: what each item is (iinf), where
its bytes are (iloc, in the file or in idat), how items refer to each other (iref) and
which properties each one has (ipco/ipma).

isobmff.parse is the gate (is the structure sound?); this is the map the lossless strip
and the verifier work from. Everything is bounds-checked: a table that points outside
the file, or past its own box, is a MalformedImage. A structure that is sound but that
Veil does not rewrite (external data references, protected items, extents of "the rest
of the file") is `NotRewritable`: the caller then re-encodes instead.
"""

from dataclasses import dataclass, field

from ..errors import MalformedImage
from . import isobmff
from .isobmff import Box


class NotRewritable(Exception):
    """A valid file whose tables use a feature the lossless rewrite does not handle."""


@dataclass(frozen=True)
class Item:
    id: int
    type: bytes
    hidden: bool  # infe flag 1: not meant to be shown on its own (grid tiles, gain maps)
    name: bytes = b""
    content_type: bytes = b""


@dataclass(frozen=True)
class Location:
    method: int  # 0: offsets into the file; 1: offsets into the idat box's body
    extents: tuple[tuple[int, int], ...]  # (offset with the base offset added, length)


@dataclass(frozen=True)
class Reference:
    kind: bytes
    source: int
    targets: tuple[int, ...]


@dataclass
class Meta:
    primary: int
    items: dict[int, Item]
    locations: dict[int, Location]
    refs: list[Reference]
    properties: list[bytes]  # whole property boxes in ipco order; property index n is properties[n - 1]
    associations: dict[int, list[tuple[int, bool]]]  # item -> [(property index, essential)]
    idat: bytes
    children: list[Box]  # the meta box's own children, for the verifier
    handler_name: bytes = b""
    top: list[Box] = field(default_factory=list)

    def property_kind(self, index: int) -> bytes:
        return self.properties[index - 1][4:8]

    def properties_of(self, item_id: int, kind: bytes) -> list[bytes]:
        return [self.properties[index - 1] for index, _ in self.associations.get(item_id, []) if self.property_kind(index) == kind]

    def targets(self, kind: bytes, source: int) -> tuple[int, ...]:
        return tuple(t for ref in self.refs if ref.kind == kind and ref.source == source for t in ref.targets)

    def item_bytes(self, data: bytes, item_id: int) -> bytes:
        location = self.locations.get(item_id)
        if location is None:
            return b""
        source = self.idat if location.method == 1 else data
        return b"".join(source[offset : offset + length] for offset, length in location.extents)


# Properties that say how to decode and show an image; nothing else may stay in a cleaned file.
DISPLAY_PROPERTIES = {
    b"hvcC", b"av1C", b"ispe", b"pixi", b"colr", b"irot", b"imir", b"clap", b"pasp", b"auxC",
    b"clli", b"mdcv", b"cclv", b"amve", b"a1op", b"a1lx", b"lsel", b"rloc",
}  # fmt: skip
PICTURE_ITEM_TYPES = {b"hvc1", b"av01", b"grid"}  # coded images (HEVC, AV1) and grids of them
PICTURE_REFERENCES = {b"dimg", b"auxl", b"prem"}  # tiles of a grid, the alpha plane, premultiplied alpha
ALPHA_AUX_TYPES = (b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1")


def is_alpha(meta: Meta, item_id: int) -> bool:
    """An auxiliary image that is the alpha plane of the picture (not a depth or gain map)."""
    for auxc in meta.properties_of(item_id, b"auxC"):
        urn = auxc[12:].split(b"\x00", 1)[0]
        if urn in ALPHA_AUX_TYPES:
            return True
    return False


def picture_items(meta: Meta) -> set[int]:
    """What a viewer shows: the primary image, the tiles it is built from (a grid's dimg
    references, followed down) and its alpha plane."""
    shown, queue = set(), [meta.primary]
    while queue:
        item_id = queue.pop()
        if item_id in shown or item_id not in meta.items:
            continue
        shown.add(item_id)
        queue += meta.targets(b"dimg", item_id)
        queue += [ref.source for ref in meta.refs if ref.kind == b"auxl" and item_id in ref.targets and is_alpha(meta, ref.source)]
    return shown


def merged_ranges(extents) -> list[tuple[int, int]]:
    """(offset, length) extents as sorted (start, end) ranges, overlapping ones merged."""
    merged: list[list[int]] = []
    for offset, length in sorted(set(extents)):
        if merged and offset <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], offset + length)
        else:
            merged.append([offset, offset + length])
    return [(start, end) for start, end in merged]


def read(data: bytes) -> Meta:
    container = isobmff.parse(data)
    meta_box = next(box for box in container.top if box.kind == b"meta")
    children = isobmff.iter_boxes(data, meta_box.body + 4, meta_box.end)
    meta = Meta(container.primary, {}, {}, [], [], {}, b"", children, top=container.top)
    for box in children:
        reader = _READERS.get(box.kind)
        if reader:
            reader(data, box, meta)
    for item_id, location in meta.locations.items():
        limit = len(meta.idat) if location.method == 1 else len(data)
        if any(offset + length > limit for offset, length in location.extents):
            raise MalformedImage(f"HEIF item {item_id}'s data lies past the end of its {'idat box' if location.method else 'file'}")
    return meta


def _u(data: bytes, pos: int, width: int, end: int) -> int:
    """A big-endian unsigned field of `width` bytes (0, 4 or 8 in iloc; 1, 2 or 4 elsewhere)."""
    if pos + width > end:
        raise MalformedImage("a HEIF item table is truncated")
    return int.from_bytes(data[pos : pos + width], "big")


def _full_box(data: bytes, box: Box) -> tuple[int, int, int]:
    version = _u(data, box.body, 1, box.end)
    flags = _u(data, box.body + 1, 3, box.end)
    return version, flags, box.body + 4


def _read_hdlr(data: bytes, box: Box, meta: Meta) -> None:
    _, _, pos = _full_box(data, box)
    meta.handler_name = bytes(data[pos + 20 : box.end]).rstrip(b"\x00")


def _read_iinf(data: bytes, box: Box, meta: Meta) -> None:
    version, _, pos = _full_box(data, box)
    pos += 2 if version == 0 else 4
    for entry in isobmff.iter_boxes(data, pos, box.end):
        if entry.kind == b"infe":
            item = _read_infe(data, entry)
            meta.items[item.id] = item


def _read_infe(data: bytes, entry: Box) -> Item:
    version, flags, pos = _full_box(data, entry)
    width = 2 if version == 2 else 4
    item_id = _u(data, pos, width, entry.end)
    protection = _u(data, pos + width, 2, entry.end)
    item_type = bytes(data[pos + width + 2 : pos + width + 6])
    if protection:
        raise NotRewritable("the HEIF file has protected (encrypted) items")
    name, after = _cstring(data, pos + width + 6, entry.end)
    content_type = _cstring(data, after, entry.end)[0] if item_type == b"mime" else b""
    return Item(item_id, item_type, bool(flags & 1), name, content_type)


def _cstring(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    stop = data.find(b"\x00", pos, end)
    return (bytes(data[pos:end]), end) if stop < 0 else (bytes(data[pos:stop]), stop + 1)


def _read_iloc(data: bytes, box: Box, meta: Meta) -> None:
    version, _, pos = _full_box(data, box)
    if version > 2:
        raise MalformedImage(f"HEIF iloc box has version {version}")
    sizes = _u(data, pos, 2, box.end)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version else 0
    if any(size not in (0, 4, 8) for size in (offset_size, length_size, base_size, index_size)):
        raise MalformedImage("HEIF iloc box uses field sizes other than 0, 4 or 8 bytes")
    id_width = 4 if version == 2 else 2
    count = _u(data, pos + 2, id_width, box.end)
    pos += 2 + id_width
    for _ in range(min(count, isobmff.MAX_ITEMS + 1)):
        item_id = _u(data, pos, id_width, box.end)
        pos += id_width
        method = _u(data, pos, 2, box.end) & 15 if version else 0
        pos += 2 if version else 0
        reference, base = _u(data, pos, 2, box.end), _u(data, pos + 2, base_size, box.end)
        extent_count = _u(data, pos + 2 + base_size, 2, box.end)
        pos += 4 + base_size
        extents = []
        for _ in range(extent_count):
            pos += index_size
            offset, length = _u(data, pos, offset_size, box.end), _u(data, pos + offset_size, length_size, box.end)
            pos += offset_size + length_size
            extents.append((base + offset, length))
        _check_location(item_id, method, reference, extents)
        meta.locations[item_id] = Location(method, tuple(extents))


def _check_location(item_id: int, method: int, reference: int, extents: list[tuple[int, int]]) -> None:
    if method not in (0, 1):
        raise NotRewritable(f"HEIF item {item_id} is built from other items' data (iloc construction method {method})")
    if reference:
        raise NotRewritable(f"HEIF item {item_id}'s data is in another file (data reference {reference})")
    if any(length == 0 for _, length in extents):
        raise NotRewritable(f"HEIF item {item_id} has an extent of unspecified length")


def _read_iref(data: bytes, box: Box, meta: Meta) -> None:
    version, _, pos = _full_box(data, box)
    width = 2 if version == 0 else 4
    for ref in isobmff.iter_boxes(data, pos, box.end):
        source, count = _u(data, ref.body, width, ref.end), _u(data, ref.body + width, 2, ref.end)
        at = ref.body + width + 2
        targets = tuple(_u(data, at + i * width, width, ref.end) for i in range(count))
        meta.refs.append(Reference(ref.kind, source, targets))


def _read_iprp(data: bytes, box: Box, meta: Meta) -> None:
    for child in isobmff.iter_boxes(data, box.body, box.end):
        if child.kind == b"ipco":
            meta.properties += [bytes(data[p.start : p.end]) for p in isobmff.iter_boxes(data, child.body, child.end)]
        elif child.kind == b"ipma":
            _read_ipma(data, child, meta)
    for item_id, associations in meta.associations.items():
        if any(not 1 <= index <= len(meta.properties) for index, _ in associations):
            raise MalformedImage(f"HEIF item {item_id} is associated with a property that does not exist")


def _read_ipma(data: bytes, box: Box, meta: Meta) -> None:
    version, flags, pos = _full_box(data, box)
    id_width, index_width = (2 if version < 1 else 4), (2 if flags & 1 else 1)
    count = _u(data, pos, 4, box.end)
    pos += 4
    for _ in range(min(count, isobmff.MAX_ITEMS + 1)):
        item_id, associations = _u(data, pos, id_width, box.end), _u(data, pos + id_width, 1, box.end)
        pos += id_width + 1
        entries = meta.associations.setdefault(item_id, [])
        for _ in range(associations):
            value = _u(data, pos, index_width, box.end)
            pos += index_width
            high_bit = 1 << (8 * index_width - 1)
            if value & ~high_bit:  # index 0 means "no property"
                entries.append((value & ~high_bit, bool(value & high_bit)))


def _read_idat(data: bytes, box: Box, meta: Meta) -> None:
    meta.idat = bytes(data[box.body : box.end])


_READERS = {b"hdlr": _read_hdlr, b"iinf": _read_iinf, b"iloc": _read_iloc, b"iref": _read_iref, b"iprp": _read_iprp, b"idat": _read_idat}
