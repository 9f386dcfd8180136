"""What `sanitise` did to one image: facts and hashes, never pixels."""

import hashlib
from dataclasses import dataclass, field, fields
from functools import cached_property


@dataclass(frozen=True)
class Report:
    format: str
    width: int  # as stored in the input
    height: int
    output_width: int  # as stored in the output (swapped when a rotation was baked in)
    output_height: int
    bytes_before: int
    bytes_after: int
    orientation: int  # EXIF orientation the input asked viewers to apply
    metadata_removed: list[str]
    icc: str  # "kept", "dropped" or "none"
    face_mode: str
    faces: list[dict]  # {"box": [x0, y0, x1, y1], "score": s} in output pixel coordinates
    masks: list[list[int]]  # rectangles actually covered, output pixel coordinates
    reencoded: bool
    jpeg_quality: int | None  # estimated from the quantisation tables, when re-encoded JPEG
    timings_ms: dict[str, float]
    verification: dict[str, object] = field(default_factory=dict)
    padding: int = 0  # bytes of zero filler added to keep the original length (preserve_length)
    # Text masking (clean/text/): the mode, what was covered by kind ({"email": 2, "code": 1}),
    # never the text itself, and the rectangles covered (output pixel coordinates).
    text_mode: str = "off"
    text: dict[str, int] = field(default_factory=dict)
    text_masks: list[list[int]] = field(default_factory=list)
    # Documents and archives: one report (as a dict) per image or member cleaned inside.
    embedded: list[dict] = field(default_factory=list)
    # The bytes themselves, for the hashes only; never part of to_dict().
    input_bytes: bytes = field(default=b"", repr=False, compare=False)
    output_bytes: bytes = field(default=b"", repr=False, compare=False)

    # Hashes are computed on first use: a caller that never reads them (a strip in a tight
    # loop) does not pay 0.4 ms per 8 MP photo for each.
    @cached_property
    def sha256_before(self) -> str:
        return hashlib.sha256(self.input_bytes).hexdigest()

    @cached_property
    def sha256_after(self) -> str:
        return hashlib.sha256(self.output_bytes).hexdigest()

    def to_dict(self) -> dict:
        facts = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_bytes")}
        return facts | {"sha256_before": self.sha256_before, "sha256_after": self.sha256_after}


@dataclass(frozen=True)
class Result:
    data: bytes
    report: Report
    # The exact bytes of every image Veil wrote into a document (empty for a plain image):
    # the egress scan finds them inside the document and must know them as Veil's own.
    embedded_outputs: tuple[bytes, ...] = ()
