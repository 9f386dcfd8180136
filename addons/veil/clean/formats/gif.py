"""GIF (87a/89a, still and animated): a block walk.

Kept verbatim: the header, logical screen descriptor and global colour table, every
image (descriptor, local colour table, LZW data), graphic control extensions (timing,
transparency, disposal) and the loop count of the NETSCAPE2.0 / ANIMEXTS1.0 application
extension. Dropped: comments, plain-text extensions, every other application extension
(XMP, ICC, vendor data) and everything after the trailer. Pixels cannot change.

Length filler (preserve_length): comment extensions holding only zero bytes, before the
trailer, the GIF counterpart of JPEG's zero COM segment; the verifier accepts exactly
that. A comment extension is at least 3 bytes (an empty one) and then grows from 5 (one
sub-block of one byte), so gaps of 1, 2 and 4 bytes cannot be filled.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from ..errors import LengthNotPreserved, MalformedImage
from .base import Header, ImageFormat, Stripped, check_gap

_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B
_GRAPHIC_CONTROL, _COMMENT, _PLAIN_TEXT, _APPLICATION = 0xF9, 0xFE, 0x01, 0xFF
_LOOP_IDS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
MAX_FRAMES = 10_000


@dataclass(frozen=True)
class Block:
    kind: str  # "screen", "image", "gce", "comment", "plain-text", "application", "extension", "trailer"
    start: int
    end: int
    label: int = 0
    app_id: bytes = b""
    sub_blocks: tuple[bytes, ...] = ()  # data sub-blocks of extensions (not of images)
    frame: tuple[int, int, int, int] = (0, 0, 0, 0)  # image: left, top, width, height


def _skip_sub_blocks(data: bytes, pos: int, collect: bool = False) -> tuple[int, list[bytes]]:
    blocks = []
    size = len(data)
    while True:
        if pos >= size:
            raise MalformedImage("GIF is truncated inside a data block")
        length = data[pos]
        if length == 0:
            return pos + 1, blocks
        if pos + 1 + length > size:
            raise MalformedImage("GIF data block runs past the end of the file")
        if collect:
            blocks.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length


def _colour_table_size(flags: int) -> int:
    return 3 * (2 ** ((flags & 0x07) + 1)) if flags & 0x80 else 0


def iter_blocks(data: bytes) -> Iterator[Block]:
    """Header+screen descriptor (+GCT) first, then every block up to and including the
    trailer. Raises MalformedImage on a broken structure or a file without a trailer."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise MalformedImage("not a GIF: the signature is missing")
    if len(data) < 13:
        raise MalformedImage("GIF is truncated inside its screen descriptor")
    pos = 13 + _colour_table_size(data[10])
    if pos > len(data):
        raise MalformedImage("GIF is truncated inside its global colour table")
    yield Block("screen", 0, pos)
    frames = 0
    while True:
        if pos >= len(data):
            raise MalformedImage("GIF is truncated: it ends before its trailer")
        introducer = data[pos]
        if introducer == _TRAILER:
            yield Block("trailer", pos, pos + 1)
            return
        if introducer == _IMAGE:
            if pos + 10 > len(data):
                raise MalformedImage("GIF image descriptor is truncated")
            left, top, width, height = (int.from_bytes(data[pos + i : pos + i + 2], "little") for i in (1, 3, 5, 7))
            body = pos + 10 + _colour_table_size(data[pos + 9]) + 1  # + LZW minimum code size
            if body > len(data):
                raise MalformedImage("GIF image is truncated before its data")
            end, _ = _skip_sub_blocks(data, body)
            frames += 1
            if frames > MAX_FRAMES:
                raise MalformedImage(f"GIF has more than {MAX_FRAMES} frames")
            yield Block("image", pos, end, frame=(left, top, width, height))
            pos = end
            continue
        if introducer == _EXTENSION:
            if pos + 2 > len(data):
                raise MalformedImage("GIF extension is truncated")
            label = data[pos + 1]
            end, subs = _skip_sub_blocks(data, pos + 2, collect=True)
            kind = {_GRAPHIC_CONTROL: "gce", _COMMENT: "comment", _PLAIN_TEXT: "plain-text", _APPLICATION: "application"}
            app_id = subs[0][:11] if label == _APPLICATION and subs else b""
            yield Block(kind.get(label, "extension"), pos, end, label, app_id, tuple(subs))
            pos = end
            continue
        raise MalformedImage(f"GIF has an unknown block 0x{introducer:02X} at byte {pos}")


def _loop_extension(block: Block) -> bytes | None:
    """The application extension holding only the loop count, rebuilt from its values."""
    if block.app_id not in _LOOP_IDS or len(block.sub_blocks) < 2:
        return None
    loop = next((sub for sub in block.sub_blocks[1:] if len(sub) == 3 and sub[0] == 1), None)
    if loop is None:
        return None
    return bytes([_EXTENSION, _APPLICATION, 11]) + block.app_id + bytes([3]) + loop + b"\x00"


def _is_loop_extension(data: bytes, block: Block) -> bool:
    return (
        block.kind == "application"
        and block.app_id in _LOOP_IDS
        and len(block.sub_blocks) == 2
        and len(block.sub_blocks[0]) == 11
        and len(block.sub_blocks[1]) == 3
        and block.sub_blocks[1][0] == 1
    )


def _is_plain_gce(block: Block) -> bool:
    return block.kind == "gce" and len(block.sub_blocks) == 1 and len(block.sub_blocks[0]) == 4


def _is_zero_comment(block: Block) -> bool:
    """Veil's length filler: a comment extension of zero bytes and nothing else."""
    return block.kind == "comment" and not any(any(sub) for sub in block.sub_blocks)


def filler(gap: int) -> bytes:
    """Exactly `gap` bytes of comment extension holding only zeros (sub-blocks of at most
    255 bytes, each after its length byte). A gap of 1, 2 or 4 cannot hold one."""
    if gap in (1, 2, 4):
        raise LengthNotPreserved(f"a gap of {gap} byte(s) is too small for the GIF filler (a comment extension of zeros)")
    if gap == 0:
        return b""
    data_bytes = gap - 3  # introducer, label and terminator around the sub-blocks
    lengths = []
    while data_bytes:
        take = min(data_bytes, 256)
        if data_bytes - take == 1:  # one byte cannot be a sub-block of its own: share it
            take -= 1
        lengths.append(take - 1)
        data_bytes -= take
    return bytes([_EXTENSION, _COMMENT]) + b"".join(bytes([n]) + bytes(n) for n in lengths) + b"\x00"


_CATEGORY = {"comment": "comment", "plain-text": "comment", "extension": "private-chunks"}


def _application_category(block: Block) -> str:
    if block.app_id == b"XMP DataXMP":
        return "xmp"
    if block.app_id.startswith(b"ICCRGBG1"):
        return "icc"
    return "vendor-segment"


class Gif(ImageFormat):
    name = "gif"
    mime = "image/gif"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head[:6] in (b"GIF87a", b"GIF89a")

    def read_header(self, data: bytes) -> Header:
        if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
            raise MalformedImage("GIF screen descriptor is truncated")
        width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        frames, far_right, far_bottom = 0, width, height
        for block in iter_blocks(data):
            if block.kind == "image":
                left, top, w, h = block.frame
                frames += 1
                far_right, far_bottom = max(far_right, left + w), max(far_bottom, top + h)
        if not width or not height:
            raise MalformedImage("GIF declares an image with no width or height")
        if not frames:
            raise MalformedImage("GIF has no image in it")
        # Pillow grows the canvas to frames that overflow it: the limit must see that size.
        return Header(far_right, far_bottom, frames)

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        removed: set[str] = set()
        out: list[bytes] = []
        view = memoryview(data)
        for block in iter_blocks(data):
            if block.kind in ("screen", "image", "trailer"):
                out.append(view[block.start : block.end])
            elif block.kind == "gce":
                if not _is_plain_gce(block):
                    raise MalformedImage("GIF graphic control extension has a wrong size")
                out.append(view[block.start : block.end])
            elif block.kind == "application" and (loop := _loop_extension(block)) is not None:
                out.append(loop)
            elif block.kind == "application":
                removed.add(_application_category(block))
            else:
                removed.add(_CATEGORY[block.kind])
            if block.kind == "trailer" and block.end < len(data):
                removed.add("trailer")
        return Stripped(b"".join(out), frozenset(removed), 1)

    def findings(self, data: bytes) -> list[str]:
        found = []
        last_end = 0
        for block in iter_blocks(data):
            last_end = block.end
            if block.kind in ("screen", "image", "trailer") or _is_plain_gce(block) or _is_loop_extension(data, block):
                continue
            if _is_zero_comment(block):
                continue
            name = block.app_id.decode("latin-1") if block.kind == "application" else block.kind
            found.append(f"{name} extension ({block.end - block.start} bytes) at byte {block.start}")
        if last_end != len(data):
            found.append(f"{len(data) - last_end} bytes after the trailer")
        return found

    def pad_to(self, data: bytes, length: int) -> bytes:
        """The filler goes just before the trailer, after the last image."""
        gap = check_gap(self.name, data, length)
        if not gap:
            return data
        trailer = next(block for block in iter_blocks(data) if block.kind == "trailer")
        return data[: trailer.start] + filler(gap) + data[trailer.start :]

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        return self.encode_frames([pixels], source, icc, [0], 0)

    def encode_frames(self, frames: list[Image.Image], source: bytes, icc: bytes | None, durations: list[int], loop: int | None) -> bytes:
        """Full frames (already composited) back to a GIF with their timing; no comment,
        no extension but the loop count. Transparency stays where the source had it."""
        converted = []
        for frame in frames:
            if frame.mode == "RGBA":
                alpha = frame.getchannel("A")
                quantised = frame.convert("RGB").quantize(255, dither=Image.Dither.NONE)
                quantised.paste(255, mask=alpha.point(lambda a: 255 if a < 128 else 0))
                quantised.info["transparency"] = 255
                converted.append(quantised)
            elif frame.mode in ("P", "L"):
                converted.append(frame)
            else:
                converted.append(frame.convert("RGB").quantize(256, dither=Image.Dither.NONE))
        options: dict = {"comment": b"", "optimize": False, "disposal": 2}
        if len(converted) > 1:
            options.update(save_all=True, append_images=converted[1:], duration=durations)
            if loop is not None:
                options["loop"] = loop
        if "transparency" in converted[0].info:
            options["transparency"] = converted[0].info["transparency"]
        buffer = io.BytesIO()
        first = converted[0]
        first.info = {k: v for k, v in first.info.items() if k == "transparency"}
        for frame in converted[1:]:
            frame.info = {k: v for k, v in frame.info.items() if k == "transparency"}
        first.save(buffer, "GIF", **options)
        return buffer.getvalue()
