"""The scale policy (which passes, at which scales, cut into which tiles) and the working
copies the network runs on. Shared by detection and verification."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..options import DetectionSettings
from .geometry import Detections

# Input height and width must be multiples of this (the network downsamples 32x).
SIZE_MULTIPLE = 32
# Faces this many pixels across (at the size the network runs on) are still found at
# threshold 0.2; smaller ones are missed. The scale policy below is built on this.
SMALLEST_RELIABLE_FACE_PX = 12
# Largest face the network still finds whole: scaling close-ups of the astronaut and Grace Hopper
# up, faces ~450 px wide were still boxed correctly, ~550 px got a shrunken box and ~800 px broke
# into partial boxes. A coarse pass makes sure every face is also seen at most this size.
# Detection takes it from DetectionSettings.largest_face_px (this is its default); verification
# crops use it directly.
LARGEST_RELIABLE_FACE_PX = 450
# Inference runs on windows of at most this many pixels a side. Measured here (2 threads):
# 1024x1024 takes ~60 ms per megapixel with a ~390 MB peak, whereas one 2400x1800 window took
# 0.45-1.6 s and peaked at 1.6 GB, so big working copies are cut into tiles. Re-measured for
# issue 9 (onnxruntime 1.32, 2 threads): ~57 ms per megapixel from 512x512 to 2400x1792 alike,
# so tiles cost only their overlap (~16% at 0.6 x 12 MP) and bound the memory. Detection takes
# the size from DetectionSettings.tile_px (this is its default); verification crops use it directly.
TILE_PX = 1024
# Consecutive passes of the scale pyramid differ by at most this factor.
PYRAMID_RATIO = 4

HIGH_BIT_DEPTH_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


# --------------------------------------------------------------------------- scale policy


@dataclass(frozen=True)
class Plan:
    """One detection pass: the image resized by `scale`, whole or in overlapping tiles."""

    scale: float  # working copy = original x scale
    overlap: int | None = None  # tile overlap at the working scale; None = one window, no tiles
    tile: int = TILE_PX  # largest window side at the working scale
    largest_face: int = LARGEST_RELIABLE_FACE_PX  # largest face found whole, at the working scale


@dataclass
class PassResult:
    detections: Detections  # in the original image's pixels
    windows: list[tuple[float, float, float, float]]  # what each inference saw, original pixels
    largest_face: float  # faces up to this long side (original px) are found whole in a window

    def saw_whole(self, found: Detections) -> np.ndarray:
        """Which boxes this pass could judge: lying inside one of its windows, and not too big."""
        x0, y0, x1, y1 = found.boxes.T
        small_enough = np.maximum(x1 - x0, y1 - y0) <= self.largest_face
        inside_any = np.zeros(len(found.scores), bool)
        for wx0, wy0, wx1, wy1 in self.windows:
            inside_any |= (x0 >= wx0) & (y0 >= wy0) & (x1 <= wx1) & (y1 <= wy1)
        return small_enough & inside_any


def plan_passes(width: int, height: int, settings: DetectionSettings, first_scale: float | None = None) -> list[Plan]:
    """A pyramid of passes that together find faces from min_face_px up to the whole frame.

    The first pass runs at the scale that keeps min_face_px detectable. Each following pass is
    at most PYRAMID_RATIO coarser and covers the faces the previous one cannot see whole: those
    cut by its tile seams, or those too big for the network. The last pass sees a face filling
    the short side at no more than settings.largest_face_px. (`CenterFace.detect` keeps a
    coarse pass's box only where no finer pass saw that spot whole: see `PassResult`.)
    """
    long_side, short_side = max(width, height), min(width, height)
    largest, tile = settings.largest_face_px, settings.tile_px
    scale = fine_scale(long_side, settings) if first_scale is None else first_scale
    plans: list[Plan] = []
    while True:
        # (+0.5: scale may be exactly largest / short_side, give or take a rounding error)
        is_last = short_side * scale <= largest + 0.5
        next_scale = scale / PYRAMID_RATIO
        if short_side * next_scale < 1.5 * largest:
            # Close to (or past) the final size: go straight there, not via a near-duplicate pass.
            next_scale = largest / short_side
        if long_side * scale <= tile:
            overlap = None
        elif is_last:
            # Nothing coarser follows, so tiles overlap by the whole short side: any face fits.
            overlap = round_up(short_side * scale, SIZE_MULTIPLE)
        else:
            # Faces up to twice the smallest one the next pass finds lie whole in some tile;
            # larger ones, possibly cut at a seam here, are found by the next pass.
            overlap = round_up(2 * SMALLEST_RELIABLE_FACE_PX * scale / next_scale, SIZE_MULTIPLE)
        if overlap is not None:
            overlap = max(overlap, round_up(settings.tile_overlap_px, SIZE_MULTIPLE))
        plans.append(Plan(scale=scale, overlap=overlap, tile=tile, largest_face=largest))
        if is_last:
            return plans
        scale = next_scale


def fine_scale(long_side: int, settings: DetectionSettings) -> float:
    """The scale that keeps a face of settings.min_face_px detectable, within the time budget."""
    if long_side < settings.upscale_below:
        # Small uploads: faces in them are small too, and CenterFace misses faces under ~12 px.
        return 2.0
    fits_budget = min(1.0, settings.max_detect_long_side / long_side)
    keeps_min_face = min(1.0, SMALLEST_RELIABLE_FACE_PX / max(settings.min_face_px, 1))
    # When they disagree, finding small faces matters more than time; tiling keeps memory bounded.
    return max(fits_budget, keeps_min_face)


def round_up(value: float, multiple: int) -> int:
    # The small tolerance keeps 96.00000001 (a float rounding error) at 96.
    return int(math.ceil(value / multiple - 1e-9) * multiple)


def tile_spans(length: int, overlap: int, tile: int = TILE_PX) -> list[tuple[int, int]]:
    """Equal windows of at most `tile` px covering [0, length), neighbours sharing `overlap` px."""
    if length <= tile:
        return [(0, length)]
    # A window must be larger than the overlap, or the windows would never advance.
    overlap = min(overlap, tile // 2)
    count = math.ceil((length - overlap) / (tile - overlap))
    # Spread the windows evenly rather than leaving a sliver at the end: less padding work.
    window = min(tile, round_up((length + (count - 1) * overlap) / count, SIZE_MULTIPLE))
    step = (length - window) / (count - 1)
    return [(round(i * step), round(i * step) + window) for i in range(count)]


def as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for the network. Alpha is ignored on purpose: colour hidden under transparent
    pixels still leaves with the image, so faces there must be found too."""
    if image.mode == "RGB":
        return image
    if image.mode in HIGH_BIT_DEPTH_MODES:
        # Pillow would clip these to 0..255; stretch the actual range so faces keep their contrast.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        grey = (values - low) * (255.0 / ((high - low) or 1.0))
        return Image.fromarray(grey.round().astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


class Copies:
    """An image and its resized copies, made once each: the upright pyramid and the turned
    passes often want the same coarse copy, and resizing 12 MP costs tens of milliseconds."""

    def __init__(self, image: Image.Image):
        self.image = image
        self._by_scale: dict[float, tuple[Image.Image, float, float]] = {}

    def resized(self, scale: float) -> tuple[Image.Image, float, float]:
        key = round(scale, 9)
        if key not in self._by_scale:
            self._by_scale[key] = _resized(self.image, scale)
        return self._by_scale[key]


def _resized(image: Image.Image, scale: float) -> tuple[Image.Image, float, float]:
    """`image` resized by `scale`, and the exact per-axis factors that rounding produced."""
    if scale == 1.0:
        return image, 1.0, 1.0
    width, height = image.size
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BILINEAR
    resized = image.resize(new_size, resample, reducing_gap=2.0 if scale < 1 else None)
    return resized, new_size[0] / width, new_size[1] / height
