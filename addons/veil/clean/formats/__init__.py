"""The image formats Veil can clean, recognised by their magic bytes only.

Adding a format: write a module with an ImageFormat subclass and list it in FORMATS.
"""

from ..errors import UnsupportedFormat
from .base import Header, ImageFormat, Stripped
from .gif import Gif
from .heif import Avif, Heif
from .jpeg import Jpeg
from .plain import Bmp, Pnm
from .png import Png
from .tiff import Tiff
from .webp import WebP

FORMATS: tuple[ImageFormat, ...] = (Jpeg(), Png(), WebP(), Gif(), Tiff(), Avif(), Heif(), Bmp(), Pnm())

# Formats we recognise but cannot clean yet: named, so the refusal is readable.
_KNOWN_UNSUPPORTED = (
    (lambda h: h[:4] in (b"II+\x00", b"MM\x00+"), "BigTIFF"),
    (lambda h: h[:2] == b"BM", "BMP with this header"),
    (lambda h: h[:2] == b"P7", "PAM"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"crx ", b"qt  ", b"mp41", b"mp42", b"isom"), "this ISO media (video or raw)"),
    (lambda h: h[:2] == b"\xff\x0a" or h[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (lambda h: h[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or h[:4] == b"\xff\x4f\xff\x51", "JPEG 2000"),
    (lambda h: h[:4] == b"\x00\x00\x01\x00", "ICO"),
)

SNIFF_BYTES = 64  # enough for an ISOBMFF ftyp box and its compatible brands


def sniff(data: bytes) -> ImageFormat:
    head = bytes(data[:SNIFF_BYTES])
    for image_format in FORMATS:
        if image_format.accepts(head):
            return image_format
    for matches, name in _KNOWN_UNSUPPORTED:
        if matches(head):
            raise UnsupportedFormat(f"{name} images are not supported yet")
    raise UnsupportedFormat("not an image format Veil recognises")


__all__ = ["FORMATS", "Header", "ImageFormat", "Stripped", "sniff"]
