"""Small faces in a big photo: the default strategy masks them, opaquely, end to end."""

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sample_faces import ASTRONAUT_FACE, GRACE_HOPPER_FACE, astronaut, grace_hopper
from veil import sanitise
from veil.clean.options import SanitiseOptions

PHOTO = (4000, 3000)
FACE_SIZES = (22, 28, 36, 48)  # px: the face's long side after pasting


def _crowd_photo() -> tuple[bytes, list[tuple[float, float, float, float]]]:
    """A 12 MP JPEG with 16 small faces (astronaut and Grace Hopper, 22-48 px) scattered on noise."""
    rng = random.Random(9)
    canvas = Image.effect_noise(PHOTO, 30).convert("RGB").filter(ImageFilter.GaussianBlur(2))
    faces = []
    for index in range(16):
        picture, box = (astronaut(), ASTRONAUT_FACE) if index % 2 == 0 else (grace_hopper(), GRACE_HOPPER_FACE)
        factor = FACE_SIZES[index % len(FACE_SIZES)] / max(box[2] - box[0], box[3] - box[1])
        small = picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.Resampling.LANCZOS)
        # One per cell of a 4 x 4 grid, at a random spot in it, so no two overlap.
        cell_w, cell_h = PHOTO[0] // 4, PHOTO[1] // 4
        left = (index % 4) * cell_w + rng.randrange(0, cell_w - small.width)
        top = (index // 4) * cell_h + rng.randrange(0, cell_h - small.height)
        canvas.paste(small, (left, top))
        sx, sy = small.width / picture.width, small.height / picture.height
        faces.append((left + box[0] * sx, top + box[1] * sy, left + box[2] * sx, top + box[3] * sy))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=90)
    return out.getvalue(), faces


@pytest.fixture(scope="module")
def crowd():
    return _crowd_photo()


def test_default_settings_mask_every_small_face_in_a_12_mp_photo_opaquely(crowd):
    data, faces = crowd
    result = sanitise(data, SanitiseOptions())  # defaults: what `veil scrub` and the policy use
    masks = result.report.masks
    covered = np.zeros((PHOTO[1], PHOTO[0]), bool)
    for x0, y0, x1, y1 in masks:
        covered[y0:y1, x0:x1] = True
    for x0, y0, x1, y1 in faces:
        box = covered[round(y0):round(y1), round(x0):round(x1)]
        assert box.mean() >= 0.95, f"face at {[round(v) for v in (x0, y0, x1, y1)]} is only {box.mean():.0%} masked"
    # No mask far from every face (the noise background has nothing face-like).
    assert len(masks) <= len(faces) + 2
    # Every mask is opaque: black through and through, up to JPEG's ringing at the edges.
    output = np.asarray(Image.open(io.BytesIO(result.data)).convert("L"), dtype=np.int16)
    for x0, y0, x1, y1 in masks:
        inner = output[y0 + 2:y1 - 2, x0 + 2:x1 - 2]
        assert inner.size and inner.max() <= 24, f"mask {x0, y0, x1, y1} is not opaque (max {inner.max()})"
    assert result.report.verification  # verified: no face detectable inside the masks


def test_small_uploads_are_upscaled_before_detection():
    from veil.clean.faces.detector import default_detector
    from veil.clean.faces.scale import plan_passes
    from veil.clean.options import DetectionSettings

    settings = DetectionSettings()
    assert plan_passes(480, 360, settings)[0].scale == 2.0
    assert plan_passes(480, 360, DetectionSettings(upscale_below=0))[0].scale == 1.0
    # A 12 px face in a 480 x 360 upload: found on the upscaled copy.
    picture = astronaut()
    factor = 12 / (ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0])
    small = picture.resize((round(512 * factor), round(512 * factor)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (480, 360), (120, 120, 120))
    canvas.paste(small, (200, 150))
    faces = default_detector().detect(canvas, settings)
    x0, y0, x1, y1 = (offset + v * factor for offset, v in zip((200, 150, 200, 150), ASTRONAUT_FACE))
    assert any(f.box[0] < (x0 + x1) / 2 < f.box[2] and f.box[1] < (y0 + y1) / 2 < f.box[3] for f in faces)


def test_tile_and_coarse_settings_shape_the_passes():
    from veil.clean.faces.scale import plan_passes, tile_spans
    from veil.clean.options import DetectionSettings

    default = plan_passes(4000, 3000, DetectionSettings())
    assert default[0].scale == pytest.approx(0.6) and default[0].tile == 1024
    assert default[-1].scale * 3000 == pytest.approx(450)
    small_tiles = plan_passes(4000, 3000, DetectionSettings(tile_px=512, largest_face_px=256))
    assert small_tiles[0].tile == 512 and small_tiles[-1].scale * 3000 == pytest.approx(256)
    spans = tile_spans(2400, small_tiles[0].overlap, 512)
    assert max(b - a for a, b in spans) <= 512 and spans[0][0] == 0 and spans[-1][1] == 2400
    assert all(b2 > a2 and a2 < b1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]))  # they overlap
