"""Quarter turns of a picture and where its rectangles land: the face detector searches turned
copies for people lying down, the text reader reads documents photographed sideways, and both
map what they found back to the upright picture's pixels with these.

A quarter turn maps an upright rectangle onto an upright rectangle exactly, so no precision is
lost either way. Turns are counter-clockwise, as Pillow's `transpose` and `rotate` count.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

Size = tuple[int, int]
Rect = tuple[int, int, int, int]

# The three quarter turns besides upright.
TURNS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
# The same turns as degrees, as `Image.rotate(degrees, expand=True)` takes them.
BY_DEGREES = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


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
    """Boxes (N x 4) of a picture of `size`, as boxes of the picture turned by `turn`."""
    x0, y0 = turn_points(boxes[:, 0], boxes[:, 1], size, turn)
    x1, y1 = turn_points(boxes[:, 2], boxes[:, 3], size, turn)
    return np.stack([np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)], axis=1)


def turn_rect(rect: Rect, size: Size, turn: Image.Transpose) -> Rect:
    box = turn_boxes(np.asarray([rect], np.float64), size, turn)[0]
    return tuple(int(round(v)) for v in box)


def unturn_rect(rect: Rect, turn: Image.Transpose, upright_size: Size) -> Rect:
    """A rectangle of the upright picture (of `upright_size`) turned by `turn`, back in upright pixels."""
    return turn_rect(rect, turned_size(upright_size, turn), inverse(turn))
