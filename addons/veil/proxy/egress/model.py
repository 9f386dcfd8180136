"""What a scan reports, and the limits it keeps to."""

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["image", "document", "opaque"]


@dataclass(frozen=True)
class ScanLimits:
    # Decoding layers (base64, percent, a zip member, a PDF stream…) nested in one another.
    max_depth: int = 6
    # Bytes produced by decompression (zip, gzip, bzip2, xz, zlib, PDF Flate) over the whole scan: text
    # decodings only ever shrink their input, decompression is where a bomb lives.
    max_decoded_bytes: int = 64 * 1024 * 1024
    # Output over compressed input; checked once a member is past ratio_slack_bytes, so a
    # small, very repetitive XML part (ratios of 50:1 are ordinary) is not refused.
    max_ratio: int = 100
    ratio_slack_bytes: int = 1024 * 1024
    max_members: int = 10_000  # zip/tar members and PDF streams over the whole scan
    max_seconds: float = 2.0


@dataclass(frozen=True)
class Finding:
    kind: Kind
    format: str  # "jpeg", "png", "pdf-image", "docx", "zip", "gzip", "pdf", …
    location: str  # "base64 at byte 1,204 → zip member word/media/image1.jpeg → jpeg at byte 0"
    # Images: the decoded stream from the image's first byte to the stream's end (a view, not
    # a copy): enough to compare with any output, whatever the format says about its end.
    data: memoryview | None = field(default=None, repr=False, compare=False)
    size: int | None = None  # images: the image's length, when its format gives its end
    sha256: str | None = None  # of the image's own bytes, when its size is known
    reason: str | None = None  # opaque: why it could not be opened
    images_inside: int = 0  # documents: how many images were found in them

    @property
    def image(self) -> memoryview | None:
        """The image's own bytes: `data` cut to `size` when the format gives it."""
        if self.data is None or self.size is None:
            return self.data
        return self.data[: self.size]


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    decoded_bytes: int  # produced by decompression, against ScanLimits.max_decoded_bytes

    def of_kind(self, kind: Kind) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == kind]
