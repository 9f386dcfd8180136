"""Big photos (48 MP phones): detection work grows with the pixels, no faster.

The network is stubbed out (it finds nothing), so what is measured is the work the scale
policy asks of it: the pixels of every window it would run on. Wall-clock time is left to
scripts/bench/faces, where a loaded machine cannot fail a test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from veil.clean.faces import detector as detector_module
from veil.clean.faces.geometry import Detections
from veil.clean.options import DetectionSettings

# Issue 18: 48 MP at most 4x the 12 MP time. Four times the pixels, plus a margin for the
# tiles' overlaps, which cover a larger share of a bigger copy.
MAX_WORK_RATIO = 4.5


def network_pixels(monkeypatch, size: tuple[int, int]) -> int:
    seen = []

    def counting_infer(self, pixels: np.ndarray, settings) -> Detections:
        seen.append(pixels.shape[0] * pixels.shape[1])
        return Detections.empty()

    monkeypatch.setattr(detector_module.CenterFace, "_infer", counting_infer)
    detector_module.default_detector().detect(Image.new("RGB", size, (90, 120, 150)), DetectionSettings())
    return sum(seen)


def test_a_48_mp_photo_costs_the_network_about_four_12_mp_photos(monkeypatch):
    twelve = network_pixels(monkeypatch, (4000, 3000))
    forty_eight = network_pixels(monkeypatch, (8000, 6000))
    # At least 4x: the 48 MP photo is searched as finely (a 20 px face is still found), ...
    assert forty_eight >= 4 * 0.95 * twelve
    # ... and no more than linear (plus tile overlaps).
    assert forty_eight <= MAX_WORK_RATIO * twelve, (forty_eight, twelve)


@pytest.mark.parametrize("size", [(4000, 3000), (8000, 6000)])
def test_turned_passes_add_a_small_share_of_the_upright_work(monkeypatch, size):
    upright_only = []

    def counting_infer(self, pixels: np.ndarray, settings) -> Detections:
        upright_only.append(pixels.shape[0] * pixels.shape[1])
        return Detections.empty()

    monkeypatch.setattr(detector_module.CenterFace, "_infer", counting_infer)
    picture = Image.new("RGB", size, (90, 120, 150))
    detector_module.default_detector().detect(picture, DetectionSettings(), turned=False)
    upright = sum(upright_only)
    every_turn = network_pixels(monkeypatch, size)
    assert upright < every_turn <= 1.5 * upright  # issue 18: turned faces at <= 1.5x the upright cost
