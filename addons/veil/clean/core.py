"""sanitise(bytes, options) -> Result: sniff, strip, mask faces, verify.

Pure: no I/O, no network, no proxy. Either returns verified bytes with a report or
raises one SanitiseError; the input is never modified and nothing partial escapes.
"""

import io
import time
from contextlib import contextmanager

from PIL import Image

from . import documents, formats, verify
from .errors import LengthNotPreserved, MalformedImage, SanitiseError, TooLarge
from .formats import Header, ImageFormat, Stripped
from .formats.base import icc_profile
from .options import FaceMode, SanitiseOptions, TextMode
from .report import Report, Result

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class _Stopwatch:
    def __init__(self):
        self.laps: dict[str, float] = {}

    @contextmanager
    def lap(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = round(self.laps.get(name, 0.0) + (time.perf_counter() - started) * 1000, 3)


def sanitise(data: bytes, options: SanitiseOptions | None = None) -> Result:
    options = options or SanitiseOptions()
    try:
        return _sanitise(bytes(data), options)
    except SanitiseError:
        raise
    except MemoryError:
        raise TooLarge("the image needs more memory than is available to clean it") from None
    except Exception as error:  # fail closed: a bug or a hostile file must not escape as a crash
        raise MalformedImage(f"the image could not be processed ({type(error).__name__})") from error


def _sanitise(data: bytes, options: SanitiseOptions) -> Result:
    if len(data) > options.max_bytes:
        raise TooLarge(f"the file is {len(data):,} bytes; the limit is {options.max_bytes:,}")
    container = documents.sniff(data)
    if container is not None:  # a PDF, an Office file, an archive: its images come back here
        return documents.clean_document(container, data, options, _sanitise)
    clock = _Stopwatch()
    with clock.lap("strip"):
        image_format, header = _admit(data, options)
        stripped = image_format.strip(data, options.keep_icc)
    target = len(data) if options.preserve_length else None
    output, faces, masks, quality, text = stripped.data, [], [], None, None
    if options.faces is not FaceMode.OFF or options.text is not TextMode.OFF:
        output, faces, masks, quality, text = _mask_pixels(image_format, header, stripped, options, clock, target)
    reencoded = output is not stripped.data or stripped.reencoded
    padding = 0
    if target is not None:
        with clock.lap("pad"):
            padding = target - len(output)
            output = image_format.pad_to(output, target)
    with clock.lap("verify"):
        orientation = 1 if reencoded else stripped.orientation
        verified = verify.verify_output(image_format, output, orientation, masks, options, frames=header.frames, text=text)
    clock.laps["total"] = round(sum(clock.laps.values()), 3)
    report = _report(data, output, image_format, header, stripped, options, faces, masks, quality, clock, verified, reencoded, padding)
    if text is not None:
        report = _with_text(report, text, options)
    return Result(output, report)


def _admit(data: bytes, options: SanitiseOptions) -> tuple[ImageFormat, Header]:
    """Refuse what we cannot or must not process, before touching any pixel."""
    if len(data) > options.max_bytes:
        raise TooLarge(f"the image is {len(data):,} bytes; the limit is {options.max_bytes:,}")
    image_format = formats.sniff(data)
    header = image_format.read_header(data)
    pixels = header.width * header.height
    if pixels > options.max_pixels:
        raise TooLarge(
            f"the image is {header.width}×{header.height} ({pixels / 1e6:.1f} MP); "
            f"the limit is {options.max_pixels / 1e6:.1f} MP"
        )
    if image_format.strip_decodes_all_frames and pixels * header.frames > options.max_pixels:
        raise TooLarge(
            f"the image has {header.frames} pages of up to {header.width}×{header.height} "
            f"({pixels * header.frames / 1e6:.1f} MP together); the limit is {options.max_pixels / 1e6:.1f} MP"
        )
    return image_format, header


def _mask_pixels(image_format, header, stripped, options, clock, target: int | None = None):
    """Detect faces and text on the upright image; when any are found, re-encode the masked
    pixels with no metadata. With nothing found the lossless strip is kept: no quality is lost.
    With a `target` length the encoding must fit in it (JPEG quality is lowered if needed)."""
    if header.frames > 1:
        return _mask_animation(image_format, header, stripped, options, clock)
    with clock.lap("decode"):
        if stripped.pixels is not None:  # a re-encoding format: start from the source's pixels
            upright = stripped.pixels.copy()
            upright.info = dict(stripped.pixels.info)
        else:
            orientation = 1 if stripped.reencoded else stripped.orientation
            upright = decode_upright(stripped.data, orientation, _stored_header(header, stripped))
    faces, masks, masked = [], [], upright
    if options.faces is not FaceMode.OFF:
        from .faces import apply_masks, default_detector

        with clock.lap("detect"):
            faces = default_detector().detect(upright, options.detection)
        if faces:
            with clock.lap("mask"):
                # In place: `upright` is this function's own decode (or copy), read again only for its ICC.
                masked, masks = apply_masks(
                    upright, faces, options.faces, options.detection.mask_scale, options.detection.mask_min_margin_px, in_place=True
                )
    masked, text = _mask_text(masked, options, clock)
    if not faces and not (text and text.rects):
        return stripped.data, [], [], None, text
    with clock.lap("encode"):
        icc = icc_profile(upright.info.get("icc_profile")) if options.keep_icc else None
        if target is None:
            output, lowered = image_format.encode(masked, stripped.data, icc), None
        else:
            output, lowered = _encode_to_fit(image_format, masked, stripped.data, icc, target)
    return output, faces, masks, lowered or _jpeg_quality(image_format, stripped.data), text


def _mask_text(picture: Image.Image, options: SanitiseOptions, clock: _Stopwatch):
    """(picture with personal text and codes covered, the TextScan), or (picture, None) when
    text masking is off: then the OCR stack is not even imported."""
    if options.text is TextMode.OFF:
        return picture, None
    from .text import cover, scan

    with clock.lap("text_detect"):
        found = scan(picture, options.text, options.text_detection)
    if not found.rects:
        return picture, found
    with clock.lap("text_mask"):
        return cover(picture, found.rects), found


def _with_text(report: Report, text, options: SanitiseOptions) -> Report:
    from dataclasses import replace

    return replace(report, text_mode=options.text.value, text=dict(text.kinds), text_masks=[list(rect) for rect in text.rects])


def _encode_to_fit(image_format, pixels, source, icc, length: int) -> tuple[bytes, int | None]:
    """The first of the format's encodings (best first) that its filler can bring to exactly
    `length` bytes; a readable LengthNotPreserved when none can."""
    tried = []
    for candidate, quality in image_format.encode_attempts(pixels, source, icc):
        try:
            image_format.pad_to(candidate, length)
        except LengthNotPreserved:
            tried.append(len(candidate))
            continue
        return candidate, quality
    raise LengthNotPreserved(
        f"the masked {image_format.name.upper()} image cannot be made exactly {length:,} bytes long, as the "
        f"service was told (encodings tried: {', '.join(f'{size:,}' for size in tried)} bytes)"
    )


def _mask_animation(image_format, header, stripped, options, clock):
    """Every frame is decoded (composited, as a viewer shows it), turned upright, searched
    and masked; the animation is written again with its timing. `masks` holds
    (frame, rect) pairs for the verifier; text found in any frame is counted together."""
    if header.width * header.height * header.frames > options.max_pixels * 4:
        raise TooLarge(
            f"the animation has {header.frames} frames of {header.width}×{header.height}; "
            "too many pixels to search every frame for faces"
        )
    with clock.lap("decode"):
        frames, durations, loop, icc = decode_frames(stripped.data, 1 if stripped.reencoded else stripped.orientation, header)
    faces, masks, masked_frames, text_masks, texts = [], [], [], [], []
    for index, frame in enumerate(frames):
        found, rects, masked = _mask_frame_faces(frame, options, clock)
        masked, text = _mask_text(masked, options, clock)
        masked_frames.append(masked)
        faces += found
        masks += [(index, rect) for rect in rects]
        if text is not None:
            texts.append(text)
            text_masks += [(index, (*rect, text.turn)) for rect in text.rects]  # the turn rides with the rect
    if not faces and not text_masks:
        return stripped.data, [], [], None, _text_of_frames(texts, []) if options.text is not TextMode.OFF else None
    # The same folding of repeated frames for both kinds of masks, so each names an output frame.
    _, _, text_masks = _merge_repeated_frames(masked_frames, durations, text_masks)
    masked_frames, durations, masks = _merge_repeated_frames(masked_frames, durations, masks)
    text = _text_of_frames(texts, text_masks) if options.text is not TextMode.OFF else None
    with clock.lap("encode"):
        output = image_format.encode_frames(masked_frames, stripped.data, icc_profile(icc) if options.keep_icc else None, durations, loop)
    return output, faces, masks, None, text


def _mask_frame_faces(frame: Image.Image, options: SanitiseOptions, clock: _Stopwatch):
    """(faces, covered rects, masked frame) for one animation frame."""
    if options.faces is FaceMode.OFF:
        return [], [], frame
    from .faces import apply_masks, default_detector

    with clock.lap("detect"):
        found = default_detector().detect(frame, options.detection)
    if not found:
        return [], [], frame
    with clock.lap("mask"):
        masked, rects = apply_masks(frame, found, options.faces, options.detection.mask_scale, options.detection.mask_min_margin_px)
    return found, rects, masked


def _text_of_frames(scans: list, frame_masks: list):
    """One TextScan for an animation: kinds added up over its frames, every rectangle for the
    report, and per output frame its rectangles and turn, which the verifier reads again."""
    from collections import Counter

    from .text import TextScan

    kinds: Counter[str] = Counter()
    for found in scans:
        kinds.update(found.kinds)
    frames: dict[int, tuple[list, int]] = {}
    for index, (*rect, turn) in frame_masks:
        frames.setdefault(index, ([], turn))[0].append(tuple(rect))
    return TextScan([rect for found in scans for rect in found.rects], dict(kinds), 0, frames)


def _merge_repeated_frames(frames: list[Image.Image], durations: list[int], masks: list) -> tuple[list[Image.Image], list[int], list]:
    """Pillow's GIF and APNG writers fold a frame identical to the one before it into that
    one (adding the durations), so the output has fewer frames than the input. Fold them
    here first, so each mask names a frame the output really has (the verifier looks there)."""
    kept: list[Image.Image] = []
    kept_durations: list[int] = []
    kept_index = []  # input frame -> output frame
    for frame, duration in zip(frames, durations):
        if kept and frame.mode == kept[-1].mode and frame.tobytes() == kept[-1].tobytes():
            kept_durations[-1] += duration
        else:
            kept.append(frame)
            kept_durations.append(duration)
        kept_index.append(len(kept) - 1)
    if len(kept) == len(frames):
        return frames, durations, masks
    merged = list(dict.fromkeys((kept_index[index], tuple(rect)) for index, rect in masks))  # identical frames, identical masks
    return kept, kept_durations, merged


def decode_frames(data: bytes, orientation: int, header: Header) -> tuple[list[Image.Image], list[int], int | None, bytes | None]:
    """(upright RGB/RGBA frames, durations in ms, loop count, ICC) of an animation."""
    try:
        image = Image.open(io.BytesIO(data))
        icc = image.info.get("icc_profile")
        loop = image.info.get("loop")
        frames, durations = [], []
        transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
        for index in range(header.frames):
            image.seek(index)
            image.load()
            durations.append(int(image.info.get("duration", 0) or 0))
            frame = image.convert("RGBA")
            frames.append(frame.transpose(transpose) if transpose else frame)
        if len({frame.size for frame in frames}) != 1:
            raise MalformedImage("the animation's frames do not all have the same size")
    except SanitiseError:
        raise
    except Exception as error:
        raise MalformedImage(f"the animation cannot be decoded: {_readable(error)}") from error
    return frames, durations, loop, icc


def _stored_header(header: Header, stripped: Stripped) -> Header:
    """The size the stripped bytes decode to: a re-encode has turned 90° rotations upright."""
    if stripped.reencoded and stripped.orientation in (5, 6, 7, 8):
        return Header(header.height, header.width, header.frames)
    return header


def decode_upright(data: bytes, orientation: int, header: Header) -> Image.Image:
    """Full decode, then the rotation the EXIF orientation asks for, so detection and
    masking see what a person sees."""
    try:
        image = Image.open(io.BytesIO(data))  # in memory: no file handle to close
        if image.size != (header.width, header.height):
            raise MalformedImage("the image's header and its pixel data disagree about its size")
        image.load()
        icc = image.info.get("icc_profile")
        transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
        upright = image.transpose(transpose) if transpose else image
    except SanitiseError:
        raise
    except Exception as error:
        raise MalformedImage(f"the image data cannot be decoded: {_readable(error)}") from error
    if icc:
        upright.info["icc_profile"] = icc
    return upright


def _readable(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:160]


def _jpeg_quality(image_format: ImageFormat, source: bytes) -> int | None:
    if image_format.name != "jpeg":
        return None
    from .formats.jpeg import estimate_quality

    tables = getattr(Image.open(io.BytesIO(source)), "quantization", None) or {}
    return estimate_quality(list(tables[0])) if 0 in tables else None


def _rect(mask) -> tuple:
    """Masks of animations are (frame, rect); the report lists the rectangles."""
    return mask[1] if len(mask) == 2 and isinstance(mask[1], (tuple, list)) else mask


def _report(data, output, image_format, header, stripped: Stripped, options, faces, masks, quality, clock, verified, reencoded, padding):
    output_size = verified.size
    icc = "dropped" if "icc" in stripped.removed else "kept" if verified.has_icc else "none"
    return Report(
        format=image_format.name,
        width=header.width,
        height=header.height,
        output_width=output_size[0],
        output_height=output_size[1],
        bytes_before=len(data),
        bytes_after=len(output),
        orientation=stripped.orientation,
        metadata_removed=sorted(stripped.removed),
        icc=icc,
        face_mode=options.faces.value,
        faces=[face.to_dict() for face in faces],
        masks=[list(_rect(mask)) for mask in masks],
        reencoded=reencoded,
        padding=padding,
        jpeg_quality=quality,
        timings_ms=dict(clock.laps),
        verification=verified.checks,
        input_bytes=data,
        output_bytes=output,
    )
