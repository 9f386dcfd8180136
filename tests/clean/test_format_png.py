import io
import struct

import pytest
from builders import (
    encode,
    exif_block,
    gradient,
    insert_before_iend,
    png_chunk,
    xmp_packet,
)
from PIL import Image, ImageCms, ImageOps, PngImagePlugin
from veil.clean.errors import MalformedImage, UnsupportedFormat
from veil.clean.formats.exif import is_minimal_orientation_exif
from veil.clean.formats.icc import neutralise
from veil.clean.formats.png import SIGNATURE, Png, iter_chunks

PNG = Png()


def kinds(data: bytes) -> list[bytes]:
    return [chunk.kind for chunk in iter_chunks(data)]


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).tobytes()


def with_text(image: Image.Image, **options) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "at home, 51.5N", zip=True)
    info.add_itxt("XML:com.adobe.xmp", xmp_packet().decode())
    return encode(image, "PNG", pnginfo=info, **options)


@pytest.fixture(scope="module")
def dirty() -> bytes:
    data = with_text(gradient(), exif=exif_block(gps=True))
    data = insert_before_iend(data, png_chunk(b"tIME", bytes(7)), png_chunk(b"prVt", b"private"))
    return data + b"trailing secret"


def test_strip_keeps_only_critical_and_display_chunks(dirty):
    stripped = PNG.strip(dirty, keep_icc=True)
    assert PNG.findings(dirty) and not PNG.findings(stripped.data)
    assert set(kinds(stripped.data)) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs", b"sRGB", b"gAMA"}
    assert stripped.removed >= {"text-chunks", "xmp", "exif", "gps", "timestamp", "private-chunks", "trailer"}
    assert b"Jane" not in stripped.data and b"secret" not in stripped.data
    assert pixels(stripped.data) == pixels(dirty)


@pytest.mark.parametrize("mode", ["P", "LA", "I;16", "RGBA", "1"])
def test_every_pixel_layout_strips_losslessly(mode):
    image = gradient().convert(mode) if mode != "I;16" else gradient().convert("L").convert("I;16")
    options = {"transparency": 3} if mode == "P" else {}
    data = with_text(image, **options)
    stripped = PNG.strip(data, keep_icc=True).data
    assert pixels(stripped) == pixels(data) and not PNG.findings(stripped)
    if mode == "P":
        assert b"tRNS" in kinds(stripped) and b"PLTE" in kinds(stripped)


def test_icc_kept_by_default_dropped_on_request():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient(), "PNG", icc_profile=icc)
    assert Image.open(io.BytesIO(PNG.strip(data, keep_icc=True).data)).info["icc_profile"] == neutralise(icc)
    dropped = PNG.strip(data, keep_icc=False)
    assert "icc" in dropped.removed and b"iCCP" not in kinds(dropped.data)


@pytest.mark.parametrize("source", ["exif", "xmp", "raw-profile"])
def test_orientation_is_kept_as_a_minimal_exif_before_the_image_data(source):
    stored = gradient().transpose(Image.Transpose.ROTATE_270)
    if source == "exif":
        data = encode(stored, "PNG", exif=exif_block(6, gps=True))
    elif source == "xmp":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp_packet(6).decode())
        data = encode(stored, "PNG", pnginfo=info)
    else:
        block = b"Exif\x00\x00" + exif_block(6)
        info = PngImagePlugin.PngInfo()
        info.add_text("Raw profile type exif", f"\nexif\n{len(block):8d}\n{block.hex()}\n", zip=True)
        data = encode(stored, "PNG", pnginfo=info)
    stripped = PNG.strip(data, keep_icc=True)
    assert stripped.orientation == 6
    order = kinds(stripped.data)
    assert order.index(b"eXIf") < order.index(b"IDAT")
    exif = next(bytes(c.data) for c in iter_chunks(stripped.data) if c.kind == b"eXIf")
    assert is_minimal_orientation_exif(exif)
    assert pixels(stripped.data) == pixels(data)


def test_animated_png_keeps_its_frames():
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert PNG.read_header(data).frames == 2
    stripped = PNG.strip(data, keep_icc=True).data
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.n_frames == 2


def test_checksum_failures_and_truncation_are_malformed(dirty):
    body = bytearray(dirty)
    body[40] ^= 0xFF  # inside IHDR or the first chunk after it
    with pytest.raises(MalformedImage):
        PNG.strip(bytes(body), keep_icc=True)
    with pytest.raises(MalformedImage):
        PNG.strip(dirty[: len(dirty) // 2], keep_icc=True)


def test_unknown_critical_chunk_is_refused():
    data = insert_before_iend(encode(gradient(), "PNG"), png_chunk(b"ZZZZ", b""))
    with pytest.raises(UnsupportedFormat):
        PNG.strip(data, keep_icc=True)


def test_invalid_headers_are_refused_before_decoding():
    header = struct.pack(">IIBBBBB", 10, 10, 7, 2, 0, 0, 0)  # bit depth 7 does not exist
    data = SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")
    with pytest.raises(MalformedImage, match="header is invalid"):
        PNG.read_header(data)
    no_data = SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b"")
    with pytest.raises(MalformedImage, match="no image data"):
        PNG.read_header(no_data)


def test_reencode_writes_no_metadata(dirty):
    out = PNG.encode(Image.open(io.BytesIO(dirty)), dirty, icc=None)
    assert not PNG.findings(out)
