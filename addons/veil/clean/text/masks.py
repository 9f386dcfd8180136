"""Where a mask goes: from a character span of a recognised line to a pixel rectangle,
and covering those rectangles with opaque black (text, like faces, is never blurred:
blurred text is readable again by deblurring and by guessing from the shapes)."""

from __future__ import annotations

from PIL import Image

from ..options import TextDetectionSettings
from .ocr import Line, Rect

# Black in each mode; single-band modes use 0. Alpha is kept so the image's shape stays.
_BLACK = {"RGB": (0, 0, 0), "RGBX": (0, 0, 0, 0), "CMYK": (0, 0, 0, 255), "YCbCr": (0, 128, 128), "LAB": (0, 128, 128), "HSV": (0, 0, 0)}
_ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}


def span_rect(line: Line, start: int, end: int, settings: TextDetectionSettings, size: tuple[int, int]) -> Rect:
    """The pixels of characters start..end of `line`, grown by the margin, clipped to `size`."""
    boxes = _span_boxes(line, start, end) or [_proportional(line.box, line.text, start, end)]
    x0 = min(box[0] for box in boxes)
    y0 = min(box[1] for box in boxes + [line.box])
    x1 = max(box[2] for box in boxes)
    y1 = max(box[3] for box in boxes + [line.box])
    return grown((x0, y0, x1, y1), line.height, settings, size)


def grown(rect: Rect, text_height: int, settings: TextDetectionSettings, size: tuple[int, int]) -> Rect:
    """`rect` grown by the margin: in full sideways (where character boxes are estimates), by
    half of it up and down (the detector's line boxes already reach past the letters, and
    the lines above and below stay readable)."""
    side = max(settings.mask_min_margin_px, round(settings.mask_margin * text_height))
    up_down = max(settings.mask_min_margin_px, round(settings.mask_margin * text_height / 2))
    width, height = size
    x0, y0, x1, y1 = rect
    return max(0, x0 - side), max(0, y0 - up_down), min(width, x1 + side), min(height, y1 + up_down)


def _span_boxes(line: Line, start: int, end: int) -> list[Rect]:
    """The word boxes (or the parts of them, proportionally) that hold characters start..end.
    Empty when the words cannot be placed in the line's text."""
    boxes, cursor = [], 0
    for word in line.words:
        at = line.text.find(word.text, cursor)
        if at < 0:
            return []
        cursor = at + len(word.text)
        overlap_start, overlap_end = max(start, at), min(end, cursor)
        if overlap_start < overlap_end:
            boxes.append(_proportional(word.box, word.text, overlap_start - at, overlap_end - at))
    return boxes


def _proportional(box: Rect, text: str, start: int, end: int) -> Rect:
    """Characters start..end of a box holding `text`, assuming even character widths (the
    margin absorbs the difference between narrow and wide letters)."""
    x0, y0, x1, y1 = box
    per_char = (x1 - x0) / max(len(text), 1)
    return int(x0 + start * per_char), y0, int(round(x0 + end * per_char + 0.5)), y1


def cover(image: Image.Image, rects: list[Rect]) -> Image.Image:
    """A copy of `image` with every rectangle opaque black (alpha kept)."""
    result = image.convert("RGBA") if image.mode in ("P", "PA") and "transparency" in image.info or image.mode == "PA" else image
    result = result.convert("RGB") if result.mode == "P" else result.copy()
    for rect in rects:
        if result.mode in _ALPHA_MODES:
            *colour, alpha = result.crop(rect).split()
            black = [Image.new(band.mode, alpha.size, 0) for band in colour]
            result.paste(Image.merge(result.mode, [*black, alpha]), rect[:2])
        else:
            result.paste(_BLACK.get(result.mode, 0), rect)
    return result
