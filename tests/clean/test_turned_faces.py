"""Faces turned by 90, 180 and 270 degrees with no orientation tag (people lying down, photos
stored sideways, scans fed in upside down), and verification that covers those turns too.

The fixtures are made here: the registry photos (scikit-image's astronaut, matplotlib's Grace
Hopper) and the annotated dev photos in ../shared/data/faces, turned by Pillow and re-saved as
JPEG without any EXIF, so nothing but the pixels says which way is up. Expected boxes are
turned by drawing them into a mask picture and turning that the same way: independent of the
box arithmetic in veil.clean.turns.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sample_faces import ASTRONAUT_FACE, GRACE_HOPPER_FACE, astronaut, grace_hopper, jpeg_bytes
from veil import sanitise
from veil.clean import turns
from veil.clean.faces import default_detector, verification
from veil.clean.faces.mask import apply_masks
from veil.clean.options import DetectionSettings, FaceMode, SanitiseOptions

SETTINGS = DetectionSettings()
TURNS = turns.BY_DEGREES
DEV_FACES = Path(os.environ.get("VEIL_BENCH_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "faces"
MIN_TURNED_RECALL = 0.98  # issue 18's target


def turned_box(box, size, turn: Image.Transpose) -> tuple[int, int, int, int]:
    """The box, drawn into a blank picture of `size` that is then turned: where it lands."""
    marks = Image.new("L", size, 0)
    marks.paste(255, tuple(round(v) for v in box))
    return marks.transpose(turn).getbbox()


def turned_jpeg(picture: Image.Image, turn: Image.Transpose) -> Image.Image:
    """`picture` turned, saved as a JPEG with no EXIF (no orientation tag), decoded again."""
    data = jpeg_bytes(picture.transpose(turn))
    with Image.open(io.BytesIO(data)) as image:
        assert "exif" not in image.info
        return image.convert("RGB")


def iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    shared = width * height
    return shared / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - shared)


def centre_found(expected, faces) -> bool:
    x, y = (expected[0] + expected[2]) / 2, (expected[1] + expected[3]) / 2
    return any(f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3] for f in faces)


# --------------------------------------------------------------------------- box arithmetic


@pytest.mark.parametrize("angle", sorted(TURNS))
def test_turned_boxes_land_where_pillow_turns_the_pixels(angle):
    turn, size, box = TURNS[angle], (300, 200), (30, 40, 90, 170)
    expected = turned_box(box, size, turn)
    assert turns.turn_rect(box, size, turn) == expected
    turned = turns.turned_size(size, turn)
    assert turned == Image.new("L", size).transpose(turn).size
    back = turns.turn_boxes(np.asarray([expected], float), turned, turns.inverse(turn))[0]
    assert tuple(back) == box


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("angle", sorted(TURNS))
@pytest.mark.parametrize("photo, face", [(astronaut, ASTRONAUT_FACE), (grace_hopper, GRACE_HOPPER_FACE)])
def test_a_turned_portrait_has_one_face_where_it_is(photo, face, angle):
    picture = photo()
    expected = turned_box(face, picture.size, TURNS[angle])
    faces = default_detector().detect(turned_jpeg(picture, TURNS[angle]), SETTINGS)
    assert len(faces) == 1, [f.to_dict() for f in faces]
    assert iou(faces[0].box, expected) >= 0.4, (faces[0].to_dict(), expected)


def test_without_the_turned_passes_an_upside_down_face_is_missed():
    # The reason for the turned passes: upright-only detection does not see this face
    # (if the network ever learns to, this test says the turned passes may be unneeded).
    upside_down = turned_jpeg(grace_hopper(), TURNS[180])
    assert default_detector().detect(upside_down, SETTINGS, turned=False) == []
    assert len(default_detector().detect(upside_down, SETTINGS)) == 1


def test_dev_photos_turned_every_way_keep_their_recall():
    if not (DEV_FACES / "faces.json").is_file():
        pytest.skip(f"the annotated dev photos are not there ({DEV_FACES}/faces.json): nothing to turn")
    found = total = 0
    missed = []
    for entry in json.loads((DEV_FACES / "faces.json").read_text()):
        with Image.open(DEV_FACES / entry["file"]) as image:
            picture = image.convert("RGB")
        for angle, turn in TURNS.items():
            faces = default_detector().detect(turned_jpeg(picture, turn), SETTINGS)
            for box in entry["faces"]:
                total += 1
                if centre_found(turned_box(box, picture.size, turn), faces):
                    found += 1
                else:
                    missed.append((entry["file"], angle, box))
    assert total > 100  # the 48 annotated faces, three turns each
    assert found / total >= MIN_TURNED_RECALL, missed


def test_a_sideways_jpeg_without_orientation_tag_is_masked_and_verified():
    picture = astronaut()
    expected = turned_box(ASTRONAUT_FACE, picture.size, TURNS[90])
    result = sanitise(jpeg_bytes(picture.transpose(TURNS[90])), SanitiseOptions())
    [mask] = result.report.masks
    x0, y0, x1, y1 = expected
    assert mask[0] <= x0 and mask[1] <= y0 and mask[2] >= x1 and mask[3] >= y1, (mask, expected)
    assert "no face detectable inside 1 masked area" in result.report.verification["faces"]


# --------------------------------------------------------------------------- verification


def test_verification_finds_a_face_left_upside_down_in_a_region():
    # Unmasked, so the face is still there: verification must see it although it is upside down.
    upside_down = turned_jpeg(grace_hopper(), TURNS[180])
    region = turned_box(GRACE_HOPPER_FACE, grace_hopper().size, TURNS[180])
    assert len(default_detector().find_in_regions(upside_down, [region], SETTINGS)) == 1


def test_a_flat_fill_is_proven_without_inference(monkeypatch):
    picture = astronaut()
    faces = default_detector().detect(picture, SETTINGS)
    masked, rects = apply_masks(picture, faces, FaceMode.MASK, SETTINGS.mask_scale)
    with Image.open(io.BytesIO(jpeg_bytes(masked, quality=75))) as output:
        output.load()
        assert all(verification.still_flat(output, rect) for rect in rects)

        def no_inference(*args, **kwargs):
            raise AssertionError("a flat fill needs no inference")

        monkeypatch.setattr(default_detector(), "detect_pass", no_inference)
        assert default_detector().find_in_regions(output, rects, SETTINGS, filled=True) == []


def test_a_fill_that_is_not_flat_any_more_goes_to_the_network():
    # A "filled" mask whose face was pasted back (as a masking bug would leave it): not flat,
    # so the network looks, and finds the face.
    picture = astronaut()
    faces = default_detector().detect(picture, SETTINGS)
    _, rects = apply_masks(picture, faces, FaceMode.MASK, SETTINGS.mask_scale)
    assert not verification.still_flat(picture, rects[0])
    assert len(default_detector().find_in_regions(picture, rects, SETTINGS, filled=True)) == 1
    # A sliver of face in an otherwise filled mask is not flat either.
    masked, _ = apply_masks(picture, faces, FaceMode.MASK, SETTINGS.mask_scale)
    x0, y0, x1, y1 = rects[0]
    masked.paste(picture.crop((x0 + 20, y0 + 20, x0 + 44, y0 + 44)), (x0 + 20, y0 + 20))
    assert not verification.still_flat(masked, rects[0])


@pytest.mark.parametrize("mode", [FaceMode.BLUR, FaceMode.PIXELATE])
def test_blurred_and_pixelated_turned_faces_are_checked_and_gone(mode):
    upside_down = turned_jpeg(grace_hopper(), TURNS[180])
    faces = default_detector().detect(upside_down, SETTINGS)
    covered, rects = apply_masks(upside_down, faces, mode, SETTINGS.mask_scale)
    assert not any(verification.still_flat(covered, rect) for rect in rects)  # so the network looked
    assert default_detector().find_in_regions(covered, rects, SETTINGS) == []
