"""Proof that an output is clean, obtained independently of the code that wrote it.

Two parsers look at every output: the format module's strict allow-list walk (which
knows nothing of what strip decided) and Pillow, a second, unrelated reader. After
masking, the face detector looks again inside every mask.
"""

import io
from dataclasses import dataclass

from PIL import Image

from . import formats
from .errors import MalformedImage, VerificationFailed
from .formats import ImageFormat, icc
from .formats.exif import ORIENTATION_TAG
from .formats.tiff import DECODE_TAGS
from .options import FaceMode, SanitiseOptions, TextMode

# Keys Pillow's readers put in `info` when a file carries these kinds of metadata.
_FORBIDDEN_INFO = {
    "comment", "xmp", "photoshop", "mp", "mpoffset", "iptc", "XML:com.adobe.xmp", "Raw profile type exif",
    "extension",  # GIF application extensions other than the loop count
    "thumbnails", "depth_images", "aux",  # pillow-heif: secondary images inside a HEIF
}  # fmt: skip
_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769


@dataclass(frozen=True)
class Verified:
    checks: dict  # what was proven, for the report
    size: tuple[int, int]  # the output's stored size, as Pillow read it
    has_icc: bool


def verify_output(
    image_format: ImageFormat, output: bytes, orientation: int, masks: list, options: SanitiseOptions, frames: int = 1, text=None
) -> Verified:
    """`orientation` is what the output must declare: the input's after a lossless strip,
    1 after a re-encode (the rotation is then in the pixels and must not happen twice).
    For animations (`frames` > 1) each mask is a (frame index, rect) pair."""
    seen_by_pillow = _open_with_pillow(image_format, output)
    findings = image_format.findings(output) + _pillow_findings(image_format, seen_by_pillow, orientation)
    if findings:
        raise VerificationFailed("metadata survived cleaning: " + "; ".join(findings[:3]))
    checks: dict[str, object] = {"metadata": "clean", "parsers": ["structure", "pillow"]}
    if options.faces is FaceMode.OFF:
        checks["faces"] = "not checked: face masking is off"
    elif masks:
        checks["faces"] = _faces_gone(output, masks, options, frames)
    else:
        checks["faces"] = "no face found"
    if options.text is not TextMode.OFF:
        checks["text"] = _text_gone(output, text, options, frames)
    return Verified(checks, seen_by_pillow.size, bool(seen_by_pillow.info.get("icc_profile")))


def _open_with_pillow(image_format: ImageFormat, output: bytes) -> Image.Image:
    if formats.sniff(output) is not image_format:
        raise VerificationFailed(f"the cleaned output is no longer {image_format.name}")
    try:
        return Image.open(io.BytesIO(output))  # headers only: no pixel is decoded here
    except Exception as error:
        raise MalformedImage(f"the cleaned image cannot be read back ({type(error).__name__}): the input is damaged")


_LOOP_EXTENSIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _is_zero_filler(value) -> bool:
    """A JPEG COM holding only zero bytes: Veil's length-keeping filler, nothing else."""
    return isinstance(value, (bytes, bytearray)) and not bytes(value).strip(b"\x00")


def _forbidden_info(key: str, value) -> bool:
    if key not in _FORBIDDEN_INFO or not value:
        return False
    if key == "comment" and _is_zero_filler(value):
        return False
    if key == "extension":  # Pillow records the GIF loop-count extension here too
        return not (isinstance(value, tuple) and bytes(value[0]).startswith(_LOOP_EXTENSIONS))
    return True


def _pillow_findings(image_format: ImageFormat, image: Image.Image, orientation: int) -> list[str]:
    found = [f"Pillow sees {key!r}" for key, value in image.info.items() if _forbidden_info(key, value)]
    exif = _exif_as_opened(image)
    if set(exif) - {ORIENTATION_TAG}:
        found.append(f"Pillow sees EXIF tags {sorted(set(exif) - {ORIENTATION_TAG})}")
    tags = getattr(image, "tag_v2", None)  # TIFF: the tags of the first page
    if tags is not None and set(tags) - DECODE_TAGS:
        found.append(f"Pillow sees TIFF tags {sorted(set(tags) - DECODE_TAGS)}")
    if tags is not None and tags.get(ORIENTATION_TAG, 1) != orientation:
        found.append(f"output declares orientation {tags.get(ORIENTATION_TAG)}, expected {orientation}")
    if tags is None and exif.get(ORIENTATION_TAG, 1) != orientation:  # a TIFF declares it in its tags, checked above
        found.append(f"output declares orientation {exif.get(ORIENTATION_TAG, 1)}, expected {orientation}")
    if exif.get_ifd(_GPS_IFD) or exif.get_ifd(_EXIF_IFD):
        found.append("Pillow sees a GPS or EXIF sub-IFD")
    profile = image.info.get("icc_profile")
    if profile and not _neutral_profile(profile):
        found.append("the colour profile holds text other than Veil's neutral value")
    for marker, payload in getattr(image, "applist", []):
        if marker == "COM" and _is_zero_filler(payload):
            continue
        if marker not in ("APP0", "APP1", "APP2", "APP14"):
            found.append(f"Pillow sees a {marker} segment")
    return found


def _neutral_profile(profile: bytes) -> bool:
    try:
        return icc.is_neutral(profile)
    except icc.DamagedProfile:
        return False


def _exif_as_opened(image: Image.Image) -> Image.Exif:
    """The EXIF Pillow found while opening. Not image.getexif(): for PNG that decodes every
    pixel to look for an eXIf chunk after the image data, which the structural walk
    already checks."""
    exif = Image.Exif()
    if image.info.get("exif"):
        exif.load(image.info["exif"])
    return exif


def _faces_gone(output: bytes, masks: list, options: SanitiseOptions, frames: int = 1) -> str:
    from .faces import default_detector

    # An opaque fill that is still flat in the output holds nothing: checked by looking, not inferring.
    filled = options.faces is FaceMode.MASK
    leftover = []
    with Image.open(io.BytesIO(output)) as image:
        if frames > 1:
            by_frame: dict[int, list] = {}
            for index, rect in masks:
                by_frame.setdefault(index, []).append(rect)
            for index, rects in sorted(by_frame.items()):
                try:
                    image.seek(index)
                except EOFError:  # the encoder merged frames the masks were counted on
                    raise VerificationFailed(f"the masked animation has fewer frames than the {index + 1} masked") from None
                image.load()
                frame = image.convert("RGBA")
                leftover += default_detector().find_in_regions(frame, rects, options.detection, filled)
        else:
            image.load()
            leftover = default_detector().find_in_regions(image, masks, options.detection, filled)
    if leftover:
        raise VerificationFailed(
            f"{len(leftover)} face(s) are still detectable inside the masked areas ({options.faces.value}); "
            "use the opaque 'mask' mode"
        )
    return f"no face detectable inside {len(masks)} masked area(s)"


def _text_gone(output: bytes, text, options: SanitiseOptions, frames: int = 1) -> str:
    """Reads the output again inside and around every text mask (every masked frame of an
    animation); no code may decode there."""
    if text is None or not text.rects:
        return "no personal text or code found" if options.text is TextMode.PII else "no text or code found"
    from collections import Counter

    from .text import leftover_text

    leftover = []
    with Image.open(io.BytesIO(output)) as image:
        for index, (rects, turn) in sorted(text.frames.items()) if frames > 1 else [(0, (text.rects, text.turn))]:
            try:
                image.seek(index)
            except EOFError:  # the encoder merged frames the masks were counted on
                raise VerificationFailed(f"the masked animation has fewer frames than the {index + 1} masked") from None
            image.load()
            leftover += leftover_text(image.convert("RGB"), rects, options.text, options.text_detection, turn)
    if leftover:
        counts = ", ".join(f"{kind}: {count}" for kind, count in sorted(Counter(leftover).items()))
        raise VerificationFailed(f"text is still readable after masking ({counts})")
    return f"nothing readable inside or around {len(text.rects)} masked area(s); no code decodes"
