"""Verification: after masking, is any face still detectable inside the masked areas?

The same detector looks again, but only at crops around the masks, each group of neighbouring
masks in one crop scaled so a face as big as its mask is detectable, and at every quarter turn
the detector searches. A face counts when its centre lies inside a mask and the mask's content
is what makes it a face (see `_owed_to_content`).

An opaque fill is proven by looking, not by inference: a mask whose inside is still one flat
colour in the output holds no content at all, so no face can be owed to it (the control with
the mask flattened would be the same picture). Only masks that are not flat any more (blur,
pixelate, or an encoding too coarse to keep the fill flat) go to the network.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageStat

from .. import turns
from ..options import DetectionSettings
from . import rotation
from .geometry import Detections, Face, Rect, ious
from .scale import LARGEST_RELIABLE_FACE_PX, SIZE_MULTIPLE, TILE_PX, as_rgb, Plan, round_up

# How far a verification crop reaches beyond its region, as a fraction of the region's size
# per side: the network needs some context around a face to recognise it.
CROP_MARGIN = 0.5
# In verification, a face filling a region should appear at least this big to the network.
VERIFY_FACE_PX = 32
# A candidate must beat the same crop with its region flattened by this much to count as a
# face left in the region. Measured on the astronaut and Grace Hopper, alone and tiled into
# crowds with faces of 10-46 px: faces left unmasked or under a too-weak blur beat the
# flattened control by 0.21-0.92; opaquely masked heads (the outline alone) by -0.08 to 0.13.
CONTENT_SCORE_MARGIN = 0.15
# Boxes this similar in the crop and in its flattened control are the same detection.
CONTROL_SAME_FACE_IOU = 0.3

# A filled mask is still flat when, inside a band of FLAT_EDGE_PX along its border, no pixel
# strays more than FLAT_TOLERANCE levels from its median colour. The band is where JPEG carries
# the surroundings' edges into the fill (one 8x8 block; 4:2:0 chroma reaches 16 px but with
# less amplitude). Measured on 185 filled masks of a 12 MP crowd photo: inside the band no
# pixel strayed more than 12 levels at quality 90, 14 at 75, 21 at 30. A band narrower than
# the smallest face the network finds (12 px) cannot hold a face on its own.
FLAT_EDGE_PX = 8
FLAT_TOLERANCE = 24
# Masks smaller than this a side are always checked by the network: at least 8 flat pixels must
# lie between the bands. (A face the network finds in verification is >= 12 px there; regions under
# VERIFY_FACE_PX are upscaled to it, so at this size the band is ~11 px, the flat centre ~11 px,
# and a face centred in the mask has its features in that flat centre.) In a 12 MP crowd, masks of
# 28-31 px are a tenth of all masks; at 4 turns each they were half of verification's time.
FLAT_MIN_SIDE = 2 * FLAT_EDGE_PX + 8


def faces_left(
    detector, image: Image.Image, regions: list[Rect], settings: DetectionSettings, filled: bool = False
) -> list[Face]:
    """Faces left inside `regions` of `image`, in its pixels. `filled`: the masks were one colour."""
    regions = [r for r in regions if r[2] > r[0] and r[3] > r[1]]
    if filled:
        regions = [r for r in regions if not still_flat(image, r)]
    found = []
    for group in _verification_groups(image.size, regions):
        crop = as_rgb(image.crop(group.crop))
        local_regions = [_shifted_rect(r, -group.crop[0], -group.crop[1]) for r in group.regions]
        for turn in (None, *turns.TURNS):
            found.append(_faces_in_crop(detector, crop, local_regions, group.plan(), settings, turn).shifted(*group.crop[:2]))
    return Detections.concat(found).suppressed(settings.nms_iou).to_faces()


def still_flat(image: Image.Image, region: Rect) -> bool:
    """Whether the region, away from its border band, is one colour (within JPEG's noise)."""
    x0, y0, x1, y1 = region
    if min(x1 - x0, y1 - y0) < FLAT_MIN_SIDE:
        return False
    inner = (x0 + FLAT_EDGE_PX, y0 + FLAT_EDGE_PX, x1 - FLAT_EDGE_PX, y1 - FLAT_EDGE_PX)
    pixels = np.asarray(as_rgb(image.crop(inner)), dtype=np.int16).reshape(-1, 3)
    median = np.median(pixels, axis=0)
    return bool(np.abs(pixels - median).max() <= FLAT_TOLERANCE)


def _faces_in_crop(
    detector, crop: Image.Image, regions: list[Rect], plan: Plan, settings: DetectionSettings, turn
) -> Detections:
    """Faces owed to the regions' content in `crop` turned by `turn` (None: upright), in crop pixels."""
    if turn is not None:
        regions = [turns.turn_rect(r, crop.size, turn) for r in regions]
        turned = crop.transpose(turn)
    else:
        turned = crop
    candidates = detector.detect_pass(turned, plan, settings).detections
    inside = np.array([_centre_in_any(box, regions) for box in candidates.boxes], bool)
    candidates = candidates.subset(inside)
    if len(candidates.scores):
        candidates = _owed_to_content(detector, turned, regions, candidates, plan, settings)
    return candidates if turn is None else rotation.unturned(candidates, turned.size, turn)


def _owed_to_content(
    detector,
    crop: Image.Image,
    regions: list[Rect],
    candidates: Detections,
    plan: Plan,
    settings: DetectionSettings,
) -> Detections:
    """Only the candidates that need what is inside the regions to be seen as faces.

    The network also answers to a head's outline: hair, ears and a collar around a
    region, even when the region itself is one flat colour (measured: the astronaut tiled
    small, opaquely masked, scored up to 0.42). So the same crop is checked once more
    with each region flattened to its mean colour. A candidate that scores about as well
    without the region's content is the outline talking, not a face left in the region.
    """
    control = crop.copy()
    for region in regions:
        mean = tuple(round(v) for v in ImageStat.Stat(crop.crop(region)).mean)
        control.paste(mean, region)
    # A lower threshold, so the control's score is measured even when it falls just under.
    lower = max(settings.threshold - CONTENT_SCORE_MARGIN, 0.02)
    control_settings = dataclasses.replace(settings, threshold=lower)
    outline_only = detector.detect_pass(control, plan, control_settings).detections
    keep = np.ones(len(candidates.scores), bool)
    for index, (box, score) in enumerate(zip(candidates.boxes, candidates.scores)):
        same_place = ious(box, outline_only.boxes) >= CONTROL_SAME_FACE_IOU
        outline_score = outline_only.scores[same_place].max(initial=0.0)
        keep[index] = score >= outline_score + CONTENT_SCORE_MARGIN
    return candidates.subset(keep)


@dataclass(frozen=True)
class _CropGroup:
    """One verification crop and the regions it was made for."""

    crop: Rect
    regions: list[Rect]
    smallest_side: int  # of all the regions, px
    largest_side: int

    @classmethod
    def around(cls, region: Rect, size: tuple[int, int]) -> _CropGroup:
        x0, y0, x1, y1 = region
        margin_x, margin_y = math.ceil((x1 - x0) * CROP_MARGIN), math.ceil((y1 - y0) * CROP_MARGIN)
        width, height = size
        crop = (
            max(0, x0 - margin_x),
            max(0, y0 - margin_y),
            min(width, x1 + margin_x),
            min(height, y1 + margin_y),
        )
        return cls(crop, [region], max(1, min(x1 - x0, y1 - y0)), max(1, x1 - x0, y1 - y0))

    def can_join(self, other: _CropGroup) -> bool:
        """Overlapping, and one scale still shows every region's face at a detectable size."""
        smallest = min(self.smallest_side, other.smallest_side)
        largest = max(self.largest_side, other.largest_side)
        one_scale_fits = largest / smallest <= LARGEST_RELIABLE_FACE_PX / VERIFY_FACE_PX
        return one_scale_fits and _overlaps(self.crop, other.crop)

    def joined(self, other: _CropGroup) -> _CropGroup:
        return _CropGroup(
            _union(self.crop, other.crop),
            self.regions + other.regions,
            min(self.smallest_side, other.smallest_side),
            max(self.largest_side, other.largest_side),
        )

    def plan(self) -> Plan:
        # Small regions are upscaled so a face filling them is comfortably above the network's
        # limit; large ones downscaled so it is within the sizes the network knows.
        upscale_small = max(1.0, VERIFY_FACE_PX / self.smallest_side)
        scale = min(upscale_small, LARGEST_RELIABLE_FACE_PX / self.largest_side)
        crop_long_side = max(self.crop[2] - self.crop[0], self.crop[3] - self.crop[1])
        if crop_long_side * scale <= TILE_PX:
            return Plan(scale=scale)
        # A crowd merges into one big crop: tile it so a face filling any region is whole in a tile.
        return Plan(scale=scale, overlap=round_up(self.largest_side * scale, SIZE_MULTIPLE))


def _verification_groups(size: tuple[int, int], regions: list[Rect]) -> list[_CropGroup]:
    """Crops around the regions, overlapping ones merged so a crowd is not one crop per face."""
    groups: list[_CropGroup] = []
    for region in regions:
        group = _CropGroup.around(region, size)
        # Absorb every group it can join; a grown crop may reach further ones, so repeat.
        while joinable := [other for other in groups if group.can_join(other)]:
            for other in joinable:
                group = group.joined(other)
                groups.remove(other)
        groups.append(group)
    return groups


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(a: Rect, b: Rect) -> Rect:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _centre_in_any(box: np.ndarray, regions: list[Rect]) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(r[0] <= x < r[2] and r[1] <= y < r[3] for r in regions)


def _shifted_rect(rect: Rect, dx: int, dy: int) -> Rect:
    return (rect[0] + dx, rect[1] + dy, rect[2] + dx, rect[3] + dy)
