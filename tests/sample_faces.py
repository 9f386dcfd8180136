"""Real photos with faces (and without), taken from files that ship inside registry packages.

scikit-image bundles NASA's astronaut portrait (Eileen Collins) and a few face-free pictures;
matplotlib bundles the portrait of Grace Hopper. Both are public domain. The files are read
straight from the installed packages (found with `find_spec`, so neither package is imported:
that keeps these helpers fast). A test that needs a missing package is skipped, saying which
package to install.
"""

from __future__ import annotations

import importlib.util
import io
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

# Face boxes (x0, y0, x1, y1) drawn by eye on the original pictures: hairline to chin,
# cheek to cheek. The detector's boxes should overlap these well, not match them exactly.
ASTRONAUT_FACE = (180, 58, 268, 172)  # in the 512x512 astronaut
GRACE_HOPPER_FACE = (172, 105, 358, 325)  # in the 512x600 grace_hopper.jpg

GRACE_HOPPER_FILE = "mpl-data/sample_data/grace_hopper.jpg"

# scikit-image pictures with no human face in them (the detector must return nothing).
FACE_FREE = ("coffee.png", "chelsea.png", "rocket.jpg")


def _package_file(package: str, relative: str, why: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed: it ships {why} (pip install -e '.[test]')")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    pytest.skip(f"this {package} installation lacks {relative} ({why})")


@cache
def _load(package: str, relative: str, why: str) -> Image.Image:
    # Cached: a test takes a .copy(), so no test can change another's picture.
    with Image.open(_package_file(package, relative, why)) as image:
        return image.convert("RGB")


def astronaut() -> Image.Image:
    """scikit-image's astronaut, 512x512 RGB, one face at ASTRONAUT_FACE. A fresh copy."""
    return _load("skimage", "data/astronaut.png", "the astronaut photo").copy()


def grace_hopper() -> Image.Image:
    """matplotlib's Grace Hopper, 512x600 RGB, one face at GRACE_HOPPER_FACE. A fresh copy."""
    return _load("matplotlib", GRACE_HOPPER_FILE, "the Grace Hopper photo").copy()


def face_free(name: str) -> Image.Image:
    """One of scikit-image's FACE_FREE pictures, as RGB."""
    return _load("skimage", f"data/{name}", f"the {name} picture").copy()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def astronaut_jpeg() -> bytes:
    return jpeg_bytes(astronaut())


def grace_hopper_jpeg() -> bytes:
    """The file exactly as matplotlib ships it (a baseline JPEG with a JFIF header)."""
    return _package_file("matplotlib", GRACE_HOPPER_FILE, "the Grace Hopper photo").read_bytes()
