"""What `sanitise` did to one image: facts and hashes, never pixels."""

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Report:
    format: str
    width: int  # as stored in the input
    height: int
    output_width: int  # as stored in the output (swapped when a rotation was baked in)
    output_height: int
    bytes_before: int
    bytes_after: int
    sha256_before: str
    sha256_after: str
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Result:
    data: bytes
    report: Report
