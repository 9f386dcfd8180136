"""Face masking in animations: every frame is searched and masked, the frame count,
timing and loop count survive, and the output is verified frame by frame."""

import io

import numpy as np
import pytest
from PIL import Image

import fixtures
from exiftool_judge import judge_bytes
from sample_faces import ASTRONAUT_FACE, astronaut, face_free
from veil.clean.core import sanitise
from veil.clean.formats import gif

SIZE = 256
SCALE = SIZE / 512
FACE = tuple(int(v * SCALE) for v in ASTRONAUT_FACE)


def frames() -> list[Image.Image]:
    """Frame 0 and 2 hold the astronaut's face, frame 1 none."""
    face = astronaut().convert("RGB").resize((SIZE, SIZE))
    return [face, face_free("coffee.png").convert("RGB").resize((SIZE, SIZE)), face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]


def build(fmt: str) -> bytes:
    images = frames()
    buffer = io.BytesIO()
    options = {"save_all": True, "append_images": images[1:], "duration": [120, 240, 360], "loop": 0}
    if fmt == "GIF":
        images = [image.quantize(256) for image in images]
        options["append_images"] = images[1:]
        options["comment"] = b"Jane Veil-Tester"
    elif fmt == "WEBP":
        options.update(quality=90, exif=fixtures.exif_bytes(thumbnail=False))
    images[0].save(buffer, fmt, **options)
    return buffer.getvalue()


def _dark_fraction(image: Image.Image, box) -> float:
    pixels = np.asarray(image.convert("RGB").crop(box))
    return float((pixels.max(axis=2) <= 40).mean())


@pytest.fixture(scope="module", params=["GIF", "WEBP", "PNG"])
def case(request):
    data = build(request.param)
    return request.param, data, sanitise(data)


def test_every_frame_with_a_face_is_masked(case):
    fmt, data, result = case
    x0, y0, x1, y1 = FACE
    inner = (x0 + 8, y0 + 8, x1 - 8, y1 - 8)
    mirrored = (SIZE - x1 + 8, y0 + 8, SIZE - x0 - 8, y1 - 8)
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.n_frames == 3
        image.seek(0)
        assert _dark_fraction(image, inner) > 0.8, f"{fmt}: frame 0 face not masked"
        image.seek(2)
        assert _dark_fraction(image, mirrored) > 0.8, f"{fmt}: frame 2 face not masked"
    assert result.report.reencoded and len(result.report.faces) >= 2
    assert "no face detectable" in result.report.verification["faces"]


def test_timing_and_loop_survive(case):
    fmt, data, result = case
    with Image.open(io.BytesIO(result.data)) as image:
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()  # WebP fills in the duration on load
            durations.append(image.info.get("duration"))
        assert durations == [120, 240, 360], fmt
        assert image.info.get("loop", 0) == 0


def test_masked_animation_is_clean(case, tmp_path):
    fmt, data, result = case
    verdict = judge_bytes({fmt: result.data}, tmp_path)[fmt]
    assert verdict.clean, verdict.explain()
    assert b"Jane" not in result.data


def _with_repeated_face_frame(fmt: str) -> bytes:
    """Three frames, the first two identical (a face), built so the writer keeps them apart:
    a GIF with its image block written twice, an APNG without durations."""
    face = astronaut().convert("RGB").resize((SIZE, SIZE))
    still = face_free("coffee.png").convert("RGB").resize((SIZE, SIZE))
    buffer = io.BytesIO()
    if fmt == "PNG":
        face.save(buffer, "PNG", save_all=True, append_images=[face.copy(), still], loop=0)
        return buffer.getvalue()
    face.quantize(256).save(buffer, "GIF")
    data = buffer.getvalue()
    [image] = [block for block in gif.iter_blocks(data) if block.kind == "image"]
    return data[: image.end] + data[image.start : image.end] + data[image.end :]


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_a_repeated_frame_with_a_face_is_masked_and_verified(fmt):
    # Found by tests/fuzz: Pillow's GIF and APNG writers fold a frame identical to the one
    # before it into that one, and the verifier then looked for a frame the output lacked
    # (the image was refused as "could not be processed (EOFError)").
    data = _with_repeated_face_frame(fmt)
    with Image.open(io.BytesIO(data)) as source:
        assert source.n_frames >= 2  # the input really repeats the frame
    result = sanitise(data)
    x0, y0, x1, y1 = FACE
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.n_frames < source.n_frames
        assert _dark_fraction(image, (x0 + 8, y0 + 8, x1 - 8, y1 - 8)) > 0.8
    assert "no face detectable" in result.report.verification["faces"]
