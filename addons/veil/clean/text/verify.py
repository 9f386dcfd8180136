"""The second look: after covering, read again inside and around every mask; no code may
decode anywhere in the picture. What is still readable is named by kind, never quoted."""

from __future__ import annotations

from PIL import Image

from ..options import TextDetectionSettings, TextMode
from . import codes, pii
from .masks import span_rect
from .ocr import Rect, default_reader
from .scan import unturn_rect

# Each mask is read again with some of its surroundings, so that a token leaking past the
# mask's edge is read whole: sideways this many times the mask's height (a few characters),
# up and down half of it (the neighbouring lines' own tokens are not this mask's concern),
# and at least MIN_CONTEXT_PX. Smaller areas are cheaper to read.
SIDEWAYS_CONTEXT_SHARE = 2.0
UP_DOWN_CONTEXT_SHARE = 0.5
MIN_CONTEXT_PX = 16
# In `all` mode a leak is a read of at least this many letters or digits: the detector takes a
# group of black boxes for a line now and then and reads one glyph in it, which says nothing.
MIN_LEAK_CHARS = 2


def leftover_text(image: Image.Image, rects: list[Rect], mode: TextMode, settings: TextDetectionSettings, turn: int) -> list[str]:
    """The kinds still readable in `image` around `rects` (personal text in pii mode, any text
    over a mask in all mode), plus any code that still decodes anywhere."""
    found = [pii.CODE for _ in codes.find_codes(image)]
    reader = default_reader()
    for area in _merged([_with_context(rect, image.size) for rect in rects]):
        crop = image.crop(area)
        lines = reader.read(crop.rotate(turn, expand=True) if turn else crop, settings)
        masks = [_inside(rect, area) for rect in rects if _overlaps(rect, area)]
        if mode is TextMode.ALL:
            boxes = [(pii.TEXT, line.box) for line in lines if sum(ch.isalnum() for ch in line.text) >= MIN_LEAK_CHARS]
        else:
            turned_size = (crop.height, crop.width) if turn in (90, 270) else crop.size
            boxes = [(hit.kind, span_rect(lines[hit.line], hit.start, hit.end, settings, turned_size)) for hit in pii.find_personal_text(lines, values_below_labels=False)]
        # Only what touches a mask counts: the context is there so that a token leaking past
        # a mask's edge is read whole, while words cut by the crop's edge mean nothing.
        found += [kind for kind, box in boxes if any(_overlaps(unturn_rect(box, turn, crop.size), mask) for mask in masks)]
    return found


def _merged(areas: list[Rect]) -> list[Rect]:
    """Overlapping areas joined, so lines near each other are read once (one detection per area)."""
    areas = list(areas)
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(areas):
            for j in range(i + 1, len(areas)):
                if _overlaps(a, areas[j]):
                    b = areas.pop(j)
                    areas[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                    break
            if merged:
                break
    return areas


def _with_context(rect: Rect, size: tuple[int, int]) -> Rect:
    x0, y0, x1, y1 = rect
    sideways = max(MIN_CONTEXT_PX, round(SIDEWAYS_CONTEXT_SHARE * (y1 - y0)))
    up_down = max(MIN_CONTEXT_PX, round(UP_DOWN_CONTEXT_SHARE * (y1 - y0)))
    return max(0, x0 - sideways), max(0, y0 - up_down), min(size[0], x1 + sideways), min(size[1], y1 + up_down)


def _inside(rect: Rect, area: Rect) -> Rect:
    return rect[0] - area[0], rect[1] - area[1], rect[2] - area[0], rect[3] - area[1]


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
