"""The photo every end-to-end test uploads: a real face (scikit-image's astronaut)
carrying GPS, camera and owner EXIF, as a JPEG a phone might produce."""

import io
from functools import cache

import pytest
from PIL import Image

from builders import exif_block
from veil.formats import sniff


@cache
def face_photo_with_gps() -> bytes:
    try:
        from skimage import data
    except ImportError:
        pytest.skip("scikit-image is not installed: it ships the astronaut photo these tests upload")
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90, exif=b"Exif\x00\x00" + exif_block(gps=True))
    return buffer.getvalue()


def assert_clean_and_masked(image: bytes):
    """Independent checks on what the upstream received: Pillow sees no EXIF beyond an
    orientation, the format module's verifier finds nothing, and no face is detectable."""
    from veil.faces import default_detector
    from veil.options import DetectionSettings

    image_format = sniff(image)
    assert image_format.findings(image) == []
    with Image.open(io.BytesIO(image)) as decoded:
        assert set(decoded.getexif()) <= {0x0112}
        decoded.load()
        assert default_detector().detect(decoded.convert("RGB"), DetectionSettings()) == []
