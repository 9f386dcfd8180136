"""The contract every image format module fulfils.

Like mat2's parsers: a format must never fail silently and never hand back a
half-cleaned file. It either returns complete bytes or raises a SanitiseError.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from PIL import Image


@dataclass(frozen=True)
class Header:
    """What the container declares, read without decoding any pixels."""

    width: int
    height: int
    frames: int = 1


@dataclass(frozen=True)
class Stripped:
    data: bytes
    removed: frozenset[str]  # metadata categories found and dropped
    orientation: int  # how the input asked to be displayed (EXIF 1-8); kept as a minimal EXIF when != 1


class ImageFormat(ABC):
    name: ClassVar[str]
    mime: ClassVar[str]

    @staticmethod
    @abstractmethod
    def accepts(head: bytes) -> bool:
        """Recognise the format from its first bytes (never from a name or declared type)."""

    @abstractmethod
    def read_header(self, data: bytes) -> Header:
        """Dimensions from the header, so limits are enforced before any decode."""

    @abstractmethod
    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        """Lossless removal: everything not needed to decode and display the pixels goes."""

    @abstractmethod
    def findings(self, data: bytes) -> list[str]:
        """The verifier's view: every structure in `data` outside the format's allow-list.
        An empty list means clean."""

    @abstractmethod
    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        """Re-encode pixels with no metadata at all (ICC only when given), matching the
        quality of `source` (the stripped original) where the format has one."""
