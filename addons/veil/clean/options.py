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
    """How faces are searched for. Every field is settable in the policy's `detection:` block.

    The default strategy (measured by scripts/bench_faces on 12 MP crowd photos): the finest
    pass runs at the scale where a face of min_face_px is still ~12 px to the network, cut into
    windows of at most tile_px (overlapping so no face is lost at a seam); coarser passes, each
    at most 4x coarser, add the faces too big for it, down to one where a face filling the
    picture is at most largest_face_px.
    """

    threshold: float = 0.2  # CenterFace at 0.2 found every face measured here, with no false boxes on negatives
    nms_iou: float = 0.3
    # Smallest face (in original pixels) that detection must still find. CenterFace reliably
    # finds ~12 px faces at the size it runs on, so the working copy is scaled to keep this.
    min_face_px: int = 20
    # The finest pass's copy is at least this long (never more than the original): a floor,
    # so a large min_face_px alone does not shrink the copy below it.
    max_detect_long_side: int = 2400
    upscale_below: int = 640  # uploads with a long side under this are upscaled x2 (0: never)
    # Inference windows are at most this many pixels a side, a multiple of 32: tiles bound the
    # memory (measured: a whole 12 MP window peaks at 2.3 GB, a 960x864 tile at 0.26 GB) at the
    # cost of their overlap.
    tile_px: int = 1024
    # Neighbouring windows share at least this many pixels (of the copy they cut). Where a pass
    # needs more it takes more: the finest pass overlaps by twice the smallest face the next
    # pass finds (96 px with the default scales), the coarsest by the largest face. At most tile_px / 2.
    tile_overlap_px: int = 96
    # The coarsest pass shows a face filling the picture's short side at most this big: the
    # largest face CenterFace still boxes whole.
    largest_face_px: int = 450
    mask_scale: float = 1.3  # masks cover the detected box enlarged by this factor
    # ... and reach at least this many pixels beyond the box on every side: a box found on a
    # reduced copy is only as exact as its 4 px output cells (6.7 original px at scale 0.6).
    mask_min_margin_px: int = 6


class TextMode(str, Enum):
    """Which text in a picture is masked (OCR + rules; see clean/text/)."""

    OFF = "off"  # the text is left as it is, and the OCR stack is never imported
    PII = "pii"  # personal text (e-mail, phone, IBAN, ID numbers, MRZ, labelled fields, addresses, plates) and every code
    ALL = "all"  # every line of text and every code


@dataclass(frozen=True)
class TextDetectionSettings:
    """How text is searched for. Every field is settable in the policy's `text_detection:` block."""

    # Detection runs on a copy whose long side is at most this (recognition reads the lines
    # from the full-size picture). 1280 still finds 10-12 px text on a 1920x1080 screenshot
    # and 3 mm text on a 12 MP photo of an A4 page (measured by scripts/bench/text).
    detect_long_side: int = 1280
    box_threshold: float = 0.5  # the detector's score for a text line
    min_text_score: float = 0.5  # recognised lines below this are treated as unreadable
    # Masks reach this share of the line's height beyond the token's box on every side
    # (and at least mask_min_margin_px): word boxes come from the recogniser's columns.
    mask_margin: float = 0.25
    mask_min_margin_px: int = 3
    # When the upright pass reads fewer than this many characters, or its lines stand on
    # end, the picture is also read turned by 90, 180 and 270 degrees (documents photographed
    # sideways or upside down) and the turn that reads best is used.
    rotate_below_chars: int = 40


@dataclass(frozen=True)
class DocumentLimits:
    """What a document or archive may hold before Veil refuses it unread: every limit is
    checked from what the container declares, before anything is inflated or parsed."""

    max_pages: int = 500
    max_members: int = 2_000  # ZIP/TAR entries, OOXML parts
    max_inflated_bytes: int = 512 * 1024 * 1024  # all members together, as declared
    max_ratio: int = 200  # one member's inflated size over its compressed size (zip bombs)
    max_depth: int = 3  # archives inside archives
    max_objects: int = 200_000  # PDF objects
    max_images: int = 500  # embedded images cleaned per document
    keep_comments: bool = False  # OOXML comments: dropped, or kept with their authors blanked
    unknown_members: str = "block"  # archive members Veil cannot clean: block | keep
    macros: str = "block"  # Office VBA projects: block (refuse the file) | drop (the document stays, its macros go)


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
    text: TextMode = TextMode.OFF  # personal text and codes in the picture (clean/text/)
    text_detection: TextDetectionSettings = field(default_factory=TextDetectionSettings)
    documents: DocumentLimits = field(default_factory=DocumentLimits)

    def __post_init__(self):
        object.__setattr__(self, "faces", FaceMode(self.faces))
        object.__setattr__(self, "text", TextMode(self.text))
