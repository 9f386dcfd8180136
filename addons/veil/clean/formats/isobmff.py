"""A small, defensive ISOBMFF (HEIF/AVIF container) reader.

Used as a gate before any bytes reach libheif or libavif (a file whose box structure is
inconsistent, or that uses box versions libheif's fuzzers crashed on, is refused here);
heif_items reads the item tables on top of it, for the lossless strip and the verifier.
"""

import struct
from dataclasses import dataclass, field

from ..errors import MalformedImage, UnsupportedFormat

MAX_BOXES = 10_000
MAX_ITEMS = 4_096
_CONTAINERS_IN_META = {b"iinf", b"iref", b"iprp", b"ipco", b"dinf", b"iloc", b"pitm", b"hdlr", b"idat", b"grpl", b"ipma"}


@dataclass(frozen=True)
class Box:
    kind: bytes
    start: int
    header: int  # size of the box header
    end: int

    @property
    def body(self) -> int:
        return self.start + self.header


@dataclass
class Container:
    brands: set[bytes]
    top: list[Box]
    items: dict[int, bytes] = field(default_factory=dict)  # item ID -> item type
    content_types: dict[int, bytes] = field(default_factory=dict)  # mime items
    refs: list[tuple[bytes, int, tuple[int, ...]]] = field(default_factory=list)  # (type, from, to)
    primary: int | None = None


def iter_boxes(data: bytes, start: int, end: int) -> list[Box]:
    boxes, pos = [], start
    while pos < end:
        if pos + 8 > end:
            raise MalformedImage(f"HEIF box header at byte {pos} is truncated")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MalformedImage(f"HEIF box header at byte {pos} is truncated")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise MalformedImage(f"HEIF box {kind!r} at byte {pos} has an impossible size ({size} bytes)")
        if not all(32 <= c < 127 for c in kind):
            raise MalformedImage(f"HEIF box at byte {pos} has an unreadable type")
        boxes.append(Box(kind, pos, header, pos + size))
        if len(boxes) > MAX_BOXES:
            raise MalformedImage("HEIF file has too many boxes")
        pos += size
    return boxes


def _full_box(data: bytes, box: Box) -> tuple[int, int]:
    if box.body + 4 > box.end:
        raise MalformedImage(f"HEIF {box.kind.decode()} box is truncated")
    version = data[box.body]
    return version, box.body + 4


def _cstring(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    stop = data.find(b"\x00", pos, end)
    if stop < 0:
        return data[pos:end], end
    return data[pos:stop], stop + 1


def parse(data: bytes) -> Container:
    """Walk the top level and the meta box; raise MalformedImage or UnsupportedFormat for
    anything that does not look like a single-image HEIF/AVIF file."""
    top = iter_boxes(data, 0, len(data))
    if not top or top[0].kind != b"ftyp":
        raise MalformedImage("HEIF file does not start with an ftyp box")
    ftyp = top[0]
    if ftyp.end - ftyp.body < 8:
        raise MalformedImage("HEIF ftyp box is truncated")
    brands = {data[ftyp.body : ftyp.body + 4]}
    brands |= {data[p : p + 4] for p in range(ftyp.body + 8, ftyp.end - 3, 4)}
    metas = [box for box in top if box.kind == b"meta"]
    if any(box.kind == b"moov" for box in top) and not metas:
        raise UnsupportedFormat("HEIF/AVIF image sequences (animations, bursts) are not supported yet")
    if len(metas) != 1:
        raise MalformedImage(f"HEIF file has {len(metas)} meta boxes; exactly one is needed")
    version, body = _full_box(data, metas[0])
    if version != 0:
        raise MalformedImage(f"HEIF meta box has version {version}; only 0 exists")
    container = Container(brands, top)
    for box in iter_boxes(data, body, metas[0].end):
        if box.kind == b"pitm":
            version, pos = _full_box(data, box)
            width = 2 if version == 0 else 4
            if pos + width > box.end:
                raise MalformedImage("HEIF pitm box is truncated")
            container.primary = int.from_bytes(data[pos : pos + width], "big")
        elif box.kind == b"iinf":
            _parse_iinf(data, box, container)
        elif box.kind == b"iref":
            _parse_iref(data, box, container)
    if container.primary is None or container.primary not in container.items:
        raise MalformedImage("HEIF file names no primary image, or one it does not contain")
    for kind, source, targets in container.refs:
        if source not in container.items or any(t not in container.items for t in targets):
            raise MalformedImage(f"HEIF {kind.decode(errors='replace')} reference names an item that does not exist")
    return container


def _parse_iinf(data: bytes, box: Box, container: Container) -> None:
    version, pos = _full_box(data, box)
    width = 2 if version == 0 else 4
    if pos + width > box.end:
        raise MalformedImage("HEIF iinf box is truncated")
    count = int.from_bytes(data[pos : pos + width], "big")
    if count > MAX_ITEMS:
        raise MalformedImage(f"HEIF file declares {count} items")
    for entry in iter_boxes(data, pos + width, box.end):
        if entry.kind != b"infe":
            continue
        version, p = _full_box(data, entry)
        if version < 2:
            raise UnsupportedFormat("HEIF item info entries older than version 2 are not supported")
        id_width = 2 if version == 2 else 4
        if p + id_width + 6 > entry.end:
            raise MalformedImage("HEIF infe box is truncated")
        item_id = int.from_bytes(data[p : p + id_width], "big")
        p += id_width + 2
        item_type = data[p : p + 4]
        p += 4
        _, p = _cstring(data, p, entry.end)  # item name
        container.items[item_id] = item_type
        if item_type == b"mime":
            content_type, _ = _cstring(data, p, entry.end)
            container.content_types[item_id] = content_type
    if len(container.items) > MAX_ITEMS:
        raise MalformedImage("HEIF file has too many items")


def _parse_iref(data: bytes, box: Box, container: Container) -> None:
    version, pos = _full_box(data, box)
    width = 2 if version == 0 else 4
    for ref in iter_boxes(data, pos, box.end):
        p = ref.body
        if p + width + 2 > ref.end:
            raise MalformedImage("HEIF iref entry is truncated")
        source = int.from_bytes(data[p : p + width], "big")
        count = int.from_bytes(data[p + width : p + width + 2], "big")
        p += width + 2
        if p + count * width > ref.end:
            raise MalformedImage("HEIF iref entry is truncated")
        targets = tuple(int.from_bytes(data[p + i * width : p + (i + 1) * width], "big") for i in range(count))
        container.refs.append((ref.kind, source, targets))


IMAGE_ITEM_TYPES = {b"hvc1", b"av01", b"grid", b"iden", b"iovl"}
