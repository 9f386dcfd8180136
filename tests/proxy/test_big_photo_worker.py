"""A 48 MP photo (what current phones shoot) is cleaned by a real worker within the per-image
time limit the policy configures by default: it is masked and verified, never refused.

No timing is asserted beyond that limit, which is what refuses an image in production; the
margin is measured by scripts/bench/faces (48 MP time beside 12 MP)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sample_faces import astronaut
from veil.clean.options import SanitiseOptions
from veil.policy.model import Limits
from veil.proxy.workers import WorkerPool

pytestmark = pytest.mark.slow

SIZE = (8000, 6000)
PLACES = [(500, 400), (3000, 2500), (6500, 4800), (7000, 300)]


def forty_eight_mp_jpeg() -> bytes:
    rng = np.random.default_rng(48)
    noise = rng.integers(60, 200, (SIZE[1] // 8, SIZE[0] // 8, 3), dtype=np.uint8)
    canvas = Image.fromarray(noise).resize(SIZE, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(2))
    for index, place in enumerate(PLACES):
        side = 256 * (index + 1)  # faces of ~45 to ~180 px
        canvas.paste(astronaut().resize((side, side), Image.Resampling.LANCZOS), place)
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_48_mp_photo_is_cleaned_within_the_default_per_image_limit():
    data = forty_eight_mp_jpeg()
    pool = WorkerPool(1)
    try:
        result, error, _ = asyncio.run(pool.clean(data, SanitiseOptions(), Limits().image_timeout_seconds))
    finally:
        pool.shutdown(wait=True)
    assert error is None, error
    assert result.report.width * result.report.height == 48_000_000
    assert len(result.report.masks) >= len(PLACES)
    assert "no face detectable" in result.report.verification["faces"]
    assert result.report.input_bytes == b""  # the original stays in the proxy, not sent back
