"""The contract every image format module fulfils.

Like mat2's parsers: a format must never fail silently and never hand back a
half-cleaned file. It either returns complete bytes or raises a SanitiseError.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from PIL import Image

from ..errors import LengthNotPreserved
from . import icc


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
    # True when the format cannot be cleaned losslessly and `data` was re-encoded: the
    # rotation is then baked into the pixels and `data` declares orientation 1.
    reencoded: bool = False
    # The upright pixels `data` was encoded from (re-encoding formats only), so masking
    # starts from the source's pixels rather than from a second generation.
    pixels: Image.Image | None = field(default=None, compare=False, repr=False)


class ImageFormat(ABC):
    name: ClassVar[str]
    mime: ClassVar[str]
    # True when strip() itself decodes every frame/page (re-encoding formats with pages):
    # the pixel limit then applies to all of them together, not to the largest alone.
    strip_decodes_all_frames: ClassVar[bool] = False

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

    def encode_attempts(self, pixels: Image.Image, source: bytes, icc: bytes | None):
        """Encodings of `pixels` from best to smallest, as (bytes, JPEG quality or None): the
        core takes the first one that fits a length it must keep. The first is `encode`'s."""
        yield self.encode(pixels, source, icc), None

    def pad_to(self, data: bytes, length: int) -> bytes:
        """`data` made exactly `length` bytes long with inert zero filler that `findings`
        accepts, or a LengthNotPreserved saying why it cannot be. Formats without a clean
        filler only accept data that already has the length."""
        gap = check_gap(self.name, data, length)
        if gap:
            raise LengthNotPreserved(
                f"keeping the original length is not supported for {self.name.upper()} images "
                f"(the cleaned image is {gap:,} bytes shorter and the format has no inert filler Veil writes)"
            )
        return data

    def encode_frames(
        self, frames: list[Image.Image], source: bytes, icc: bytes | None, durations: list[int], loop: int | None
    ) -> bytes:
        """Re-encode an animation (full, composited, upright frames) with its timing and
        no metadata. Formats that cannot write animations refuse to mask them."""
        from ..errors import UnsupportedFormat

        raise UnsupportedFormat(f"masking faces in animated {self.name.upper()} images is not supported yet")


_ICC_HEADER = 128 + 4  # the fixed header and the tag count


def icc_profile(candidate: bytes | None) -> bytes | None:
    """The colour profile a reader handed over, if it is shaped like one: an ICC header with
    the 'acsp' signature and a size field that fits the bytes (which are cut to it); else None.
    Readers hand over whatever bytes a file's ICC tag or box points at, and a damaged pointer
    can point at other metadata (a TIFF Artist tag, found by fuzzing): Veil must not write
    that back into a cleaned image as a colour profile. The profile comes back with its text
    tags neutral (icc.py): a profile can name the person whose screen it was made on."""
    if not candidate or len(candidate) < _ICC_HEADER or bytes(candidate[36:40]) != b"acsp":
        return None
    declared = int.from_bytes(candidate[:4], "big")
    if not _ICC_HEADER <= declared <= len(candidate):
        return None
    try:
        return icc.neutralise(bytes(candidate[:declared]))  # colours kept, text tags neutral
    except icc.DamagedProfile:
        return None


def check_gap(name: str, data: bytes, length: int) -> int:
    """How many bytes must be added to `data` to reach `length`; refuses when it is longer."""
    gap = length - len(data)
    if gap < 0:
        raise LengthNotPreserved(
            f"the cleaned {name.upper()} image is {-gap:,} bytes longer than the original "
            f"({len(data):,} > {length:,}), and the service was told the original size"
        )
    return gap
