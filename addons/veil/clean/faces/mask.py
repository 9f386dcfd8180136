"""Covering detected faces: opaque fill (the default), or the weaker blur and pixelate.

Blur and pixelation are offered only as explicit choices: both are known to be reversible
enough for re-identification (McPherson et al. 2016), whereas a solid fill leaves nothing.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from ..options import FaceMode
from .detector import Face, Rect

# Modes whose last band is alpha: masking blacks out the colour bands and keeps the alpha,
# so transparency (and the image's shape) is unchanged while no face pixel survives.
ALPHA_MODES = {"LA", "La", "RGBA", "RGBa"}
# Black in each mode (single-band modes, including I, I;16* and F, use 0).
BLACK = {
    "RGB": (0, 0, 0),
    "RGBX": (0, 0, 0, 0),
    "CMYK": (0, 0, 0, 255),
    "YCbCr": (0, 128, 128),
    "LAB": (0, 128, 128),
    "HSV": (0, 0, 0),
}
# Modes Pillow's GaussianBlur accepts; others are blurred band by band or in numpy.
BLURRABLE_MODES = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK"}
NUMERIC_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}

# Blur strength: the Gaussian's radius (Pillow's, ~ standard deviation) as a fraction of the
# face's size (long side of its box). CenterFace still found the blurred face at 0.05 on the
# astronaut and at 0.1 on Grace Hopper, and lost both from 0.12; 0.2 leaves a margin.
BLUR_RADIUS_PER_FACE = 0.2
# Pixelation: about this many blocks across the face. Few enough that features merge,
# but mosaics remain the weakest option (they can be partly reversed).
PIXELATE_BLOCKS_PER_FACE = 8
# Floors for small faces, where the proportional values leave too much: a radius of 4 px
# left a blurred badge on Grace Hopper's cap detectable, 6 px did not; 4 px blocks are the
# least that made tiled 13 px astronaut faces undetectable (2 px blocks left 119 of 120).
MIN_BLUR_RADIUS = 6.0
MIN_PIXELATE_BLOCK = 4.0


def apply_masks(
    image: Image.Image, faces: list[Face], mode: FaceMode, scale: float, min_margin: float = 0, in_place: bool = False
) -> tuple[Image.Image, list[Rect]]:
    """A new image with every face covered, and the rectangles actually covered.

    Each rectangle is the face's box enlarged `scale` times around its centre (and by at least
    `min_margin` px on every side), rounded outward and clipped to the image. The input image is
    not modified, unless `in_place` (for a caller done with the original: a 12 MP copy is 36 MB,
    48 MP 144 MB); palette images are always converted to a new image.
    """
    mode = FaceMode(mode)
    result = _editable_copy(image, in_place)
    if mode is FaceMode.OFF:
        return result, []
    cover = {FaceMode.MASK: _fill, FaceMode.BLUR: _blur, FaceMode.PIXELATE: _pixelate}[mode]
    rects = []
    for face in faces:
        rect = covered_rect(face, scale, result.size, min_margin)
        if rect is not None:
            cover(result, rect, face)
            rects.append(rect)
    return result, rects


def covered_rect(face: Face, scale: float, size: tuple[int, int], min_margin: float = 0) -> Rect | None:
    """The face's box enlarged `scale` times about its centre, and by at least `min_margin` px
    on every side (small faces: their boxes are coarse), rounded outward, clipped."""
    x0, y0, x1, y1 = face.box
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max((x1 - x0) * scale, (x1 - x0) + 2 * min_margin) / 2
    half_h = max((y1 - y0) * scale, (y1 - y0) + 2 * min_margin) / 2
    width, height = size
    rect = (
        max(0, math.floor(centre_x - half_w)),
        max(0, math.floor(centre_y - half_h)),
        min(width, math.ceil(centre_x + half_w)),
        min(height, math.ceil(centre_y + half_h)),
    )
    return rect if rect[2] > rect[0] and rect[3] > rect[1] else None


def _editable_copy(image: Image.Image, in_place: bool = False) -> Image.Image:
    """A copy to draw on (or `image` itself, in place). Palette images become RGB(A): a fill or
    blur needs real colours."""
    if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if image.mode == "P":
        return image.convert("RGB")
    return image if in_place else image.copy()


# --------------------------------------------------------------------------- cover styles


def _fill(image: Image.Image, rect: Rect, face: Face) -> None:
    """Opaque black over the rect: the cheapest cover, and the only one that cannot be undone."""
    if image.mode in ALPHA_MODES:
        region = image.crop(rect)
        *colour, alpha = region.split()
        black = [Image.new(band.mode, region.size, 0) for band in colour]
        image.paste(Image.merge(image.mode, [*black, alpha]), rect[:2])
    else:
        image.paste(BLACK.get(image.mode, 0), rect)


def _blur(image: Image.Image, rect: Rect, face: Face) -> None:
    """Gaussian blur of the rect alone (not the whole image: far cheaper on big photos)."""
    radius = max(MIN_BLUR_RADIUS, BLUR_RADIUS_PER_FACE * _face_size(face))
    region = image.crop(rect)
    image.paste(_gaussian(region, radius), rect[:2])


def _pixelate(image: Image.Image, rect: Rect, face: Face) -> None:
    """Mosaic of about PIXELATE_BLOCKS_PER_FACE blocks across the face."""
    block = max(MIN_PIXELATE_BLOCK, _face_size(face) / PIXELATE_BLOCKS_PER_FACE)
    region = image.crop(rect)
    blocks = (max(1, round(region.width / block)), max(1, round(region.height / block)))
    # Averaging (BOX) then nearest-neighbour back gives flat blocks with no leftover detail.
    mosaic = region.resize(blocks, Image.Resampling.BOX).resize(region.size, Image.Resampling.NEAREST)
    image.paste(mosaic, rect[:2])


def _face_size(face: Face) -> float:
    x0, y0, x1, y1 = face.box
    return max(x1 - x0, y1 - y0)


def _gaussian(region: Image.Image, radius: float) -> Image.Image:
    if region.mode in BLURRABLE_MODES:
        return region.filter(ImageFilter.GaussianBlur(radius))
    if region.mode in NUMERIC_MODES:
        return _numeric_gaussian(region, radius)
    if region.mode == "1":
        return region.convert("L").filter(ImageFilter.GaussianBlur(radius)).convert("1")
    # YCbCr, LAB, HSV: Pillow only blurs these band by band.
    bands = [band.filter(ImageFilter.GaussianBlur(radius)) for band in region.split()]
    return Image.merge(region.mode, bands)


def _numeric_gaussian(region: Image.Image, sigma: float) -> Image.Image:
    """Gaussian for 32-bit int, 16-bit and float images, which Pillow cannot blur.

    Three box blurs per axis (running sums, so the cost does not grow with the radius)
    approximate a Gaussian closely, as Pillow's own GaussianBlur does.
    """
    values = np.asarray(region, dtype=np.float64)
    # Three boxes of width w have variance 3 * (w^2 - 1) / 12 = sigma^2.
    half = max(1, round((math.sqrt(4 * sigma**2 + 1) - 1) / 2))
    for axis in (0, 1):
        for _ in range(3):
            values = _box_blur(values, half, axis)
    if region.mode == "F":
        return Image.fromarray(values.astype(np.float32), "F")
    blurred = Image.fromarray(np.rint(values).astype(np.int32), "I")
    return blurred if region.mode == "I" else blurred.convert(region.mode)


def _box_blur(values: np.ndarray, half: int, axis: int) -> np.ndarray:
    """Mean over a window of 2 * half + 1 along `axis`, edges extended."""
    pad = [(half + 1, half) if a == axis else (0, 0) for a in range(values.ndim)]
    sums = np.cumsum(np.pad(values, pad, mode="edge"), axis=axis)
    length = values.shape[axis]
    upper = np.take(sums, np.arange(2 * half + 1, 2 * half + 1 + length), axis=axis)
    lower = np.take(sums, np.arange(0, length), axis=axis)
    return (upper - lower) / (2 * half + 1)
