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

from ..turns import Size, inverse, turn_boxes
from .geometry import Detections, Rect

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


def unturned(found: Detections, turned: Size, turn: Image.Transpose) -> Detections:
    """Detections made on a picture turned by `turn` (of size `turned`), in the unturned one's pixels."""
    return Detections(turn_boxes(found.boxes, turned, inverse(turn)), found.scores)


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
