"""Faces turned by 90, 180 or 270 degrees: people lying down, photos stored sideways with no
orientation tag, scans fed in upside down.

CenterFace only knows upright faces (it still finds them tilted by about ±30°), so the picture
is also searched turned by each quarter turn, and what is found there is turned back into the
upright picture's pixels: masks are always computed upright. The turned passes run on a copy
TURNED_COARSENESS times coarser than the finest upright pass: turned faces are rarely tiny, and
three passes at 1/16 of the pixels add about 3/16 of the upright cost instead of tripling it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .geometry import Detections, Rect

Size = tuple[int, int]

# The three quarter turns searched besides upright (PIL turns counter-clockwise).
TURNS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
# Turned passes start this many times coarser than the finest upright pass: the upright
# pyramid's own step, so on large photos they reuse its second copy. At the default settings
# a turned face is found from ~4 x min_face_px (80 px on a 12 MP photo, 24 px on a small upload).
TURNED_COARSENESS = 4


def turned_scale(fine_scale: float, short_side: int, largest_face_px: int) -> float:
    """The scale of the copy the turned passes search.

    TURNED_COARSENESS times coarser than the finest upright pass; and where that copy would be
    within twice the upright pyramid's last one, that last copy itself: one pass per turn, as on
    a 12 MP photo, not two (on a 48 MP photo, turned faces are then found from ~160 px, the
    same 2% of the long side as on 12 MP)."""
    scale = fine_scale / TURNED_COARSENESS
    last = largest_face_px / short_side
    return min(scale, last) if short_side * scale <= 2 * largest_face_px else scale


def turned_size(size: Size, turn: Image.Transpose) -> Size:
    width, height = size
    return (width, height) if turn is Image.Transpose.ROTATE_180 else (height, width)


def turn_points(xs: np.ndarray, ys: np.ndarray, size: Size, turn: Image.Transpose):
    """Where points of a picture of `size` land in that picture turned by `turn`."""
    width, height = size
    if turn is Image.Transpose.ROTATE_90:
        return ys, width - xs
    if turn is Image.Transpose.ROTATE_180:
        return width - xs, height - ys
    if turn is Image.Transpose.ROTATE_270:
        return height - ys, xs
    raise ValueError(f"not a quarter turn: {turn}")


def inverse(turn: Image.Transpose) -> Image.Transpose:
    return {
        Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
        Image.Transpose.ROTATE_180: Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
    }[turn]


def turn_boxes(boxes: np.ndarray, size: Size, turn: Image.Transpose) -> np.ndarray:
    """Boxes (N x 4) of a picture of `size`, as boxes of the picture turned by `turn`.
    A quarter turn maps an upright rectangle onto an upright rectangle exactly."""
    x0, y0 = turn_points(boxes[:, 0], boxes[:, 1], size, turn)
    x1, y1 = turn_points(boxes[:, 2], boxes[:, 3], size, turn)
    return np.stack([np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)], axis=1)


def unturned(found: Detections, turned: Size, turn: Image.Transpose) -> Detections:
    """Detections made on a picture turned by `turn` (of size `turned`), in the unturned one's pixels."""
    return Detections(turn_boxes(found.boxes, turned, inverse(turn)), found.scores)


def turn_rect(rect: Rect, size: Size, turn: Image.Transpose) -> Rect:
    box = turn_boxes(np.asarray([rect], np.float64), size, turn)[0]
    return tuple(int(round(v)) for v in box)


def around(box, size: Size, margin: float) -> Rect:
    """The box grown by `margin` times its size on every side, in whole pixels, inside the picture."""
    x0, y0, x1, y1 = box
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    width, height = size
    return (
        max(0, int(x0 - grow_x)),
        max(0, int(y0 - grow_y)),
        min(width, int(np.ceil(x1 + grow_x))),
        min(height, int(np.ceil(y1 + grow_y))),
    )
