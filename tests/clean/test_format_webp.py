import io
import struct

import pytest
from PIL import Image, ImageCms, ImageOps

from builders import encode, exif_block, gradient, xmp_packet
from veil.clean.errors import MalformedImage
from veil.clean.formats.exif import is_minimal_orientation_exif
from veil.clean.formats.webp import WebP, iter_chunks

WEBP = WebP()
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def fourccs(data: bytes) -> list[bytes]:
    return [chunk.fourcc for chunk in iter_chunks(data)]


def vp8x_flags(data: bytes) -> int:
    return next(chunk.data[0] for chunk in iter_chunks(data) if chunk.fourcc == b"VP8X")


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).tobytes()


def append_chunk(webp: bytes, fourcc: bytes, body: bytes) -> bytes:
    """Adds a chunk inside the RIFF container (odd sizes get their pad byte)."""
    chunk = fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")
    payload = webp[8:] + chunk
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


@pytest.fixture(scope="module", params=["lossy", "lossless", "alpha"])
def dirty(request) -> bytes:
    image = gradient() if request.param != "alpha" else gradient().convert("RGBA")
    options = {"lossless": request.param != "lossy", "quality": 80}
    data = encode(image, "WEBP", exif=exif_block(gps=True), xmp=xmp_packet(), icc_profile=ICC, **options)
    return append_chunk(data, b"priv", b"odd") + b"trailing secret"


def test_strip_drops_exif_xmp_unknown_chunks_and_trailer(dirty):
    stripped = WEBP.strip(dirty, keep_icc=True)
    assert WEBP.findings(dirty) and not WEBP.findings(stripped.data)
    assert b"EXIF" not in fourccs(stripped.data) and b"XMP " not in fourccs(stripped.data)
    assert stripped.removed >= {"exif", "gps", "xmp", "private-chunks", "trailer"}
    assert vp8x_flags(stripped.data) & 0x0C == 0 and vp8x_flags(stripped.data) & 0x20
    assert b"Jane" not in stripped.data and b"secret" not in stripped.data
    assert pixels(stripped.data) == pixels(dirty)
    riff_size = struct.unpack_from("<I", stripped.data, 4)[0]
    assert riff_size + 8 == len(stripped.data)


def test_icc_dropped_on_request_clears_its_flag(dirty):
    stripped = WEBP.strip(dirty, keep_icc=False)
    assert b"ICCP" not in fourccs(stripped.data) and not vp8x_flags(stripped.data) & 0x20
    assert "icc" in stripped.removed


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_survives_as_a_minimal_exif_chunk(orientation):
    data = encode(gradient(), "WEBP", exif=exif_block(orientation, gps=True), lossless=True)
    stripped = WEBP.strip(data, keep_icc=True)
    exif = [bytes(c.data) for c in iter_chunks(stripped.data) if c.fourcc == b"EXIF"]
    assert len(exif) == 1 and is_minimal_orientation_exif(exif[0]) and vp8x_flags(stripped.data) & 0x08
    assert pixels(stripped.data) == pixels(data)


def test_header_dimensions_for_each_bitstream(dirty):
    header = WEBP.read_header(dirty)
    assert (header.width, header.height) == (48, 32)
    simple = encode(gradient(), "WEBP", quality=70)
    assert (WEBP.read_header(simple).width, WEBP.read_header(simple).height) == (48, 32)


def test_animation_keeps_its_frames():
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert WEBP.read_header(data).frames == 2
    with Image.open(io.BytesIO(WEBP.strip(data, keep_icc=True).data)) as image:
        assert image.n_frames == 2


def test_truncated_container_is_malformed(dirty):
    with pytest.raises(MalformedImage):
        WEBP.strip(dirty[:30], keep_icc=True)


def test_reencode_matches_lossless_source_and_writes_no_metadata():
    lossless = encode(gradient(), "WEBP", lossless=True)
    out = WEBP.encode(gradient(), lossless, icc=None)
    assert b"VP8L" in fourccs(out) and not WEBP.findings(out)
    assert pixels(out) == gradient().tobytes()
