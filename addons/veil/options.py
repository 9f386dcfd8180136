"""What a caller may ask of `sanitise`. Immutable, with safe defaults."""

from dataclasses import dataclass, field
from enum import Enum


class FaceMode(str, Enum):
    MASK = "mask"  # opaque fill: the default, cannot be undone
    BLUR = "blur"  # weaker: blurred faces can sometimes be re-identified
    PIXELATE = "pixelate"  # weaker still: mosaics are known to be reversible
    OFF = "off"


@dataclass(frozen=True)
class DetectionSettings:
    threshold: float = 0.2  # CenterFace at 0.2 found every face measured here, with no false boxes on negatives
    nms_iou: float = 0.3
    # Smallest face (in original pixels) that detection must still find. CenterFace reliably
    # finds ~12 px faces at the size it runs on, so the working copy is scaled to keep this.
    min_face_px: int = 20
    max_detect_long_side: int = 2400  # upper bound on the working copy, for time
    upscale_below: int = 640  # small uploads are upscaled x2 so tiny faces are found
    mask_scale: float = 1.3  # masks cover the detected box enlarged by this factor


@dataclass(frozen=True)
class SanitiseOptions:
    faces: FaceMode = FaceMode.MASK
    keep_icc: bool = True  # colour profiles carry colour, not identity
    max_pixels: int = 50_000_000
    max_bytes: int = 100 * 1024 * 1024
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    # Make the output exactly as long as the input, padded with inert zero filler that the
    # format module writes and the verifier accepts (for services told the size first).
    preserve_length: bool = False

    def __post_init__(self):
        object.__setattr__(self, "faces", FaceMode(self.faces))
