"""Reading the text in a picture: RapidOCR (PP-OCRv6 detection + recognition on onnxruntime).

The models ship inside the `rapidocr` wheel (rapidocr/models/PP-OCRv6_*_small.onnx), so
nothing is downloaded: the engine is pointed at that folder and checked to find both files
before it is built. Detection runs on a reduced copy (the cheap part that also tells whether
there is any text at all); recognition reads only the detected lines, from the full-size picture.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..options import TextDetectionSettings

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1, x1/y1 exclusive (PIL boxes)

INSTALL_HINT = "the OCR models are not installed; install them with `pip install rapidocr==3.10.0` (what scripts/setup does)"
# The files rapidocr 3.10's default configuration (PP-OCRv6 small) reads; both ship in its wheel.
MODEL_FILES = ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx")
ORT_THREADS_ENV = "VEIL_ORT_THREADS"
DEFAULT_ORT_THREADS = 2


@dataclass(frozen=True)
class Word:
    text: str
    box: Rect


@dataclass(frozen=True)
class Line:
    """One recognised line, in the coordinates of the picture that was read."""

    text: str
    score: float
    box: Rect
    words: tuple[Word, ...]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def model_problem() -> str | None:
    """What is wrong with the installed OCR models, or None when they are ready."""
    try:
        _model_dir()
    except RuntimeError as error:
        return str(error)
    return None


def _model_dir() -> Path:
    try:
        folder = Path(str(importlib.resources.files("rapidocr") / "models"))
    except ModuleNotFoundError:
        raise RuntimeError(INSTALL_HINT) from None
    if not all((folder / name).is_file() for name in MODEL_FILES):
        raise RuntimeError(INSTALL_HINT)
    return folder


def _threads() -> int:
    raw = os.environ.get(ORT_THREADS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_ORT_THREADS


class TextReader:
    """The OCR engine, loaded once per process (see `default_reader`)."""

    def __init__(self):
        import logging

        from rapidocr import RapidOCR

        folder = _model_dir()
        threads = _threads()
        self._engine = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.model_root_dir": str(folder),
                "Global.max_side_len": 100_000,  # never shrink before recognition: we choose the detection size
                "Global.use_cls": False,  # orientation is handled per picture (see scan.py)
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "Det.limit_type": "max",
                # One line per recognition run: a batch is padded to its widest line, and the
                # lines of a screenshot range from one word to the whole width. Measured on
                # 1080p screenshots: 2.60 s per image at 16, 2.10 s at 6 (the default), 1.72 s
                # at 1 (one small run; in scripts/bench/text the time was within noise of 6),
                # and a whole `veil scrub` process peaked at 826 MiB instead of 1,027.
                "Rec.rec_batch_num": 1,
            }
        )
        logging.getLogger("RapidOCR").propagate = False  # its own handler; never the proxy's log
        with _sessions_without_spinning():
            # RapidOCR builds its sessions on first use; build them now, once per process.
            self._engine._load_det_model()
            self._engine._load_rec_model()
        self._lock = threading.Lock()  # the engine keeps per-call settings on itself

    def read(self, image: Image.Image, settings: TextDetectionSettings) -> list[Line]:
        """Every readable line of `image` (any mode), with word boxes."""
        pixels = _as_bgr(image)
        with self._lock:
            det = self._engine._load_det_model()
            det.limit_side_len = settings.detect_long_side
            result = self._engine(
                pixels, use_cls=False, return_word_box=True, text_score=settings.min_text_score, box_thresh=settings.box_threshold
            )
        return _lines(result)


@contextmanager
def _sessions_without_spinning():
    """RapidOCR sets the thread counts of its onnxruntime sessions but not spinning: idle
    inference threads would spin on the core that decodes and encodes (and, in the proxy,
    on the other workers' core), as the face detector avoids too. Its session options are
    made here with spinning off, for the sessions built inside this block only."""
    from rapidocr.inference_engine.onnxruntime.main import OrtInferSession

    original = OrtInferSession._init_sess_opts

    def options_without_spinning(cfg):
        options = original(cfg)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    OrtInferSession._init_sess_opts = staticmethod(options_without_spinning)
    try:
        yield
    finally:
        OrtInferSession._init_sess_opts = staticmethod(original)


def _as_bgr(image: Image.Image) -> np.ndarray:
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA").convert("RGB") if "A" in image.getbands() else image.convert("RGB")
    if image.mode == "L":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _lines(result) -> list[Line]:
    if result is None or getattr(result, "txts", None) is None or result.boxes is None:
        return []
    words_per_line = result.word_results or ()
    lines = []
    for index, (quad, text, score) in enumerate(zip(result.boxes, result.txts, result.scores)):
        words = words_per_line[index] if index < len(words_per_line) else ()
        lines.append(Line(text, float(score), _rect_of(quad), tuple(_words(words))))
    return lines


def _words(raw) -> list[Word]:
    words = []
    for entry in raw or ():
        if len(entry) >= 3 and entry[2] is not None and entry[0]:
            words.append(Word(entry[0], _rect_of(entry[2])))
    return words


def _rect_of(quad) -> Rect:
    points = np.asarray(quad, dtype=float).reshape(-1, 2)
    x0, y0 = np.floor(points.min(axis=0))
    x1, y1 = np.ceil(points.max(axis=0))
    return int(max(0, x0)), int(max(0, y0)), int(x1), int(y1)


_default: TextReader | None = None
_default_lock = threading.Lock()


def default_reader() -> TextReader:
    """The process-wide reader, built on first use (about a second: two ONNX sessions)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = TextReader()
    return _default
