"""The image formats Veil can clean, recognised by their magic bytes only.

Adding a format: write a module with an ImageFormat subclass and list it in FORMATS.
"""

from ..errors import UnsupportedFormat
from .base import Header, ImageFormat, Stripped
from .jpeg import Jpeg
from .png import Png
from .webp import WebP

FORMATS: tuple[ImageFormat, ...] = (Jpeg(), Png(), WebP())

# Formats we recognise but cannot clean yet: named, so the refusal is readable.
_KNOWN_UNSUPPORTED = (
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), "GIF"),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*"), "TIFF"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"avif", b"avis"), "AVIF"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc"), "HEIC/HEIF"),
    (lambda h: h[:2] == b"BM", "BMP"),
    (lambda h: h[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"), "PNM"),
    (lambda h: h[:2] == b"\xff\x0a" or h[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (lambda h: h[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or h[:4] == b"\xff\x4f\xff\x51", "JPEG 2000"),
    (lambda h: h[:4] == b"\x00\x00\x01\x00", "ICO"),
)

SNIFF_BYTES = 32


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
