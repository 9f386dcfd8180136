"""TIFF (single and multi-page): cleaned in place, or re-encoded with Pillow, losslessly.

A TIFF's metadata lives in the same IFDs as its pixel layout, with offsets everywhere.
Veil cleans it in place (tiff_inplace.py): each directory keeps only the tags needed to
decode it (size, samples, compression, strips, photometric, colour map, extra samples,
orientation, ICC profile with neutral text unless dropped), and every byte nothing kept
points at is zeroed: EXIF and GPS IFDs, XMP, IPTC, Photoshop, maker notes, SubIFDs
(previews) and every private tag are gone, the pixel data and the length are unchanged
(so a declared length holds; zeros appended when a masked page came out shorter).

A TIFF whose data cannot be found from those tags alone (old-style JPEG, strips without
byte counts) is re-encoded instead: every page decoded and written again with the same
tags and a lossless compression (Group 4 for bilevel pages, Deflate otherwise), the
Orientation applied to the pixels. Reported as `reencoded: true`: identical pixels, a
new file layout.
"""

import io
import struct

from PIL import Image, ImageOps, ImageSequence

from ..errors import MalformedImage
from . import exif, tiff_inplace
from .base import Header, ImageFormat, Stripped, check_gap, icc_profile

MAX_PAGES = 1_000
# Tags a decoder needs; everything else is metadata. Pillow/libtiff write a subset.
DECODE_TAGS = {
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283, 284, 286, 287,
    292, 293, 296, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 529, 530, 531, 532, 34675,
}  # fmt: skip
_CATEGORY_TAGS = {
    34665: "exif",
    34853: "gps",
    700: "xmp",
    33723: "iptc",
    34377: "photoshop",
    37510: "comment",
    270: "comment",  # ImageDescription
    305: "exif",  # Software
    306: "timestamp",
    315: "owner",
    33432: "owner",
    271: "camera",
    272: "camera",
    330: "thumbnail",  # SubIFDs: reduced-resolution previews
}


def _order(data: bytes) -> str:
    if data[:4] == b"II*\x00":
        return "<"
    if data[:4] == b"MM\x00*":
        return ">"
    raise MalformedImage("not a TIFF: the header is missing (BigTIFF is not supported)")


def iter_ifds(data: bytes) -> list[tuple[int, dict[int, tuple[int, int, int]]]]:
    """Every IFD in the main chain: (offset, {tag: (type, count, value field offset)})."""
    order = _order(data)
    if len(data) < 8:
        raise MalformedImage("TIFF header is truncated")
    offset, seen, ifds = struct.unpack_from(order + "I", data, 4)[0], set(), []
    while offset:
        if offset in seen or len(ifds) >= MAX_PAGES:
            raise MalformedImage("TIFF pages loop or are too many")
        seen.add(offset)
        if offset + 2 > len(data):
            raise MalformedImage(f"TIFF directory at byte {offset} lies past the end of the file")
        (count,) = struct.unpack_from(order + "H", data, offset)
        end = offset + 2 + 12 * count
        if end + 4 > len(data):
            raise MalformedImage(f"TIFF directory at byte {offset} is truncated")
        entries = {}
        for i in range(count):
            tag, typ, n = struct.unpack_from(order + "HHI", data, offset + 2 + 12 * i)
            entries[tag] = (typ, n, offset + 10 + 12 * i)
        ifds.append((offset, entries))
        offset = struct.unpack_from(order + "I", data, end)[0]
    if not ifds:
        raise MalformedImage("TIFF has no image directory")
    return ifds


def _orientation(data: bytes, entries: dict) -> int:
    if exif.ORIENTATION_TAG not in entries:
        return 1
    typ, n, field = entries[exif.ORIENTATION_TAG]
    if typ not in (3, 4) or n < 1:  # SHORT, or LONG as some writers use
        return 1
    value = struct.unpack_from(_order(data) + ("H" if typ == 3 else "I"), data, field)[0]
    return value if value in range(1, 9) else 1


class Tiff(ImageFormat):
    name = "tiff"
    mime = "image/tiff"
    strip_decodes_all_frames = True

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head[:4] in (b"II*\x00", b"MM\x00*")

    def read_header(self, data: bytes) -> Header:
        ifds = iter_ifds(data)
        order = _order(data)
        width = height = 0
        for _, entries in ifds:
            size = []
            for tag in (256, 257):
                if tag not in entries:
                    raise MalformedImage("TIFF page has no width or height")
                typ, n, field = entries[tag]
                size.append(struct.unpack_from(order + ("H" if typ == 3 else "I"), data, field)[0])
            if not all(size):
                raise MalformedImage("TIFF declares a page with no width or height")
            width, height = max(width, size[0]), max(height, size[1])
        # The pixel limit is checked on the largest page, and each page is checked again below.
        return Header(width, height, len(ifds))

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        ifds = iter_ifds(data)
        removed: set[str] = set()
        for _, entries in ifds:
            for tag in entries:
                if tag not in DECODE_TAGS:
                    removed.add(_CATEGORY_TAGS.get(tag, "private-chunks"))
        orientation = _orientation(data, ifds[0][1])
        try:
            cleaned, icc_dropped = tiff_inplace.strip(data, _order(data), ifds, DECODE_TAGS, keep_icc)
        except tiff_inplace.NotInPlace:
            return self._reencode(data, keep_icc, removed, orientation, len(ifds))
        return Stripped(cleaned, frozenset(removed | ({"icc"} if icc_dropped else set())), orientation)

    def _reencode(self, data: bytes, keep_icc: bool, removed: set[str], orientation: int, page_count: int) -> Stripped:
        pages, icc_seen, icc_unreadable = [], False, False
        try:
            with Image.open(io.BytesIO(data), formats=["TIFF"]) as image:
                for page in ImageSequence.Iterator(image):
                    page.load()
                    found = page.info.get("icc_profile")
                    icc = icc_profile(found)
                    icc_seen |= bool(found)
                    icc_unreadable |= bool(found) and icc is None
                    upright = ImageOps.exif_transpose(page)
                    bare = upright.copy()
                    bare.info = {"icc_profile": icc} if icc and keep_icc else {}
                    pages.append(bare)
        except Exception as error:
            raise MalformedImage(f"the TIFF image data cannot be decoded: {str(error)[:120]}") from error
        if len(pages) != page_count:
            raise MalformedImage(f"TIFF declares {page_count} pages but {len(pages)} could be read")
        if icc_seen and (not keep_icc or icc_unreadable):
            removed.add("icc")
        encoded = self._write(pages)
        return Stripped(encoded, frozenset(removed), orientation, reencoded=True, pixels=pages[0] if len(pages) == 1 else None)

    def findings(self, data: bytes) -> list[str]:
        """Tags beyond what decoding needs, and bytes no directory points at that are not
        zero (the orientation is checked against the expected one by the verifier)."""
        found = []
        ifds = iter_ifds(data)
        for page, (offset, entries) in enumerate(ifds):
            for tag in sorted(entries):
                if tag not in DECODE_TAGS:
                    found.append(f"page {page + 1}: tag {tag} ({_CATEGORY_TAGS.get(tag, 'private')})")
        try:
            hidden = tiff_inplace.uncovered_bytes(data, tiff_inplace.covered(data, _order(data), ifds))
        except tiff_inplace.NotInPlace as reason:
            return [*found, f"page data Veil cannot locate ({reason})"]
        if hidden:
            found.append(f"{hidden:,} bytes that no directory points at are not zero")
        return found

    def pad_to(self, data: bytes, length: int) -> bytes:
        """Zeros appended: no directory points at them, so no reader sees them."""
        return data + bytes(check_gap(self.name, data, length))

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        page = pixels.copy()
        page.info = {"icc_profile": icc} if icc else {}
        return self._write([page])

    def encode_frames(self, frames, source, icc, durations, loop) -> bytes:
        pages = []
        for frame in frames:
            page = frame.copy()
            page.info = {"icc_profile": icc} if icc else {}
            pages.append(page)
        return self._write(pages)

    @staticmethod
    def _write(pages: list[Image.Image]) -> bytes:
        buffer = io.BytesIO()
        first, rest = pages[0], pages[1:]
        for page in pages:
            page.encoderinfo = {}
        options = {"compression": _compression(pages), "tiffinfo": {}}
        if first.info.get("icc_profile"):
            options["icc_profile"] = first.info["icc_profile"]
        if rest:
            options.update(save_all=True, append_images=rest)
        first.save(buffer, "TIFF", **options)
        return buffer.getvalue()


def _compression(pages: list[Image.Image]) -> str:
    return "group4" if all(page.mode == "1" for page in pages) else "tiff_adobe_deflate"
