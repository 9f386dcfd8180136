"""The photo every end-to-end test uploads: a real face (scikit-image's astronaut)
carrying GPS, camera and owner EXIF, as a JPEG a phone might produce."""

import io
from functools import cache

import pytest
from builders import exif_block
from PIL import Image
from veil.clean.formats import sniff


@cache
def face_photo_with_gps() -> bytes:
    try:
        from skimage import data
    except ImportError:
        pytest.skip("scikit-image is not installed: it ships the astronaut photo these tests upload")
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90, exif=b"Exif\x00\x00" + exif_block(gps=True))
    return buffer.getvalue()


def heic_face_photo_with_gps() -> bytes:
    """The astronaut as an iPhone writes photos: HEIC, with GPS and camera EXIF and XMP."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from skimage import data

    buffer = io.BytesIO()
    image = pillow_heif.from_pillow(Image.fromarray(data.astronaut()))
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description dc:creator="Jane Doe" xmlns:dc="http://purl.org/dc/elements/1.1/"/></rdf:RDF></x:xmpmeta>'
    image.save(buffer, quality=70, exif=b"Exif\x00\x00" + exif_block(gps=True), xmp=xmp)
    return buffer.getvalue()


def large_face_photo_with_gps(size: int = 9 * 1024 * 1024) -> bytes:
    """The astronaut with GPS, grown past `size` bytes by maker-note-like APP15 segments (a
    large phone photo's share of metadata): big enough that SDKs send it in several chunks."""
    photo = face_photo_with_gps()
    segment = b"\xff\xef\xff\xfe" + b"owner: Jane Doe; serial 1234567890 " * 1872
    segment = segment[: 4 + 0xFFFC]
    count = (size - len(photo)) // len(segment) + 1
    return photo[:2] + segment * count + photo[2:]


def assert_clean_and_masked(image: bytes):
    """Independent checks on what the upstream received: Pillow sees no EXIF beyond an
    orientation, the format module's verifier finds nothing, and no face is detectable."""
    problems = clean_and_masked_problems(image)
    assert problems == [], "; ".join(problems)


def clean_and_masked_problems(image: bytes, faces: bool = True) -> list[str]:
    """What assert_clean_and_masked checks, as readable problems (none: clean). faces=False
    skips the face detector, the one expensive check."""
    return metadata_problems(image) + (face_problems(image) if faces else [])


def metadata_problems(image: bytes) -> list[str]:
    image_format = sniff(image)
    problems = [f"{image_format.name} verifier: {finding}" for finding in image_format.findings(image)]
    with Image.open(io.BytesIO(image)) as decoded:
        extra = sorted(set(decoded.getexif()) - {0x0112})
    if extra:
        problems.append("EXIF tags beyond orientation: " + ", ".join(f"0x{tag:04x}" for tag in extra))
    return problems


def face_problems(image: bytes) -> list[str]:
    from veil.clean.faces import default_detector
    from veil.clean.options import DetectionSettings

    with Image.open(io.BytesIO(image)) as decoded:
        found = default_detector().detect(decoded.convert("RGB"), DetectionSettings())
    return [f"{len(found)} face(s) still detectable"] if found else []
