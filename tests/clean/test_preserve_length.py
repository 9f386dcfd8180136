"""preserve_length: cleaned images padded back to the exact original length with Veil's
own zero filler, which the verifier accepts and nothing else resembling it."""

import io
import struct

import pytest
from PIL import Image

from builders import encode, gradient, insert_after_soi, insert_before_iend, jpeg_segment, png_chunk
from fixtures import riff_chunk
from veil.clean import core, verify
from veil.clean.core import sanitise
from veil.clean.errors import LengthNotPreserved, VerificationFailed
from veil.clean.formats import Gif, Jpeg, Png, WebP, sniff
from veil.clean.formats.jpeg import filler
from veil.clean.options import FaceMode, SanitiseOptions

STRIP_ONLY = SanitiseOptions(faces=FaceMode.OFF, preserve_length=True)
SECRET = b"Jane Doe, 12 Secret Lane" * 8


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA").tobytes()


def dirty_jpeg() -> bytes:
    return insert_after_soi(encode(gradient((64, 48)), "JPEG", quality=85), jpeg_segment(0xFE, SECRET))


def dirty_png() -> bytes:
    return insert_before_iend(encode(gradient((64, 48)), "PNG"), png_chunk(b"tEXt", b"Author\x00" + SECRET))


def dirty_webp(lossless: bool) -> bytes:
    bare = encode(gradient((64, 48)), "WEBP", lossless=lossless)
    return bare + b"X" * 40  # trailing bytes after the RIFF container: dropped by the strip


def extended_webp() -> bytes:
    data = encode(gradient((64, 48)), "WEBP", lossless=True, exif=b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08\x00\x00")
    return data


def verify_structure(fmt, data: bytes):
    registered = sniff(data)  # the verifier insists on the registered instance of the format
    assert registered.name == fmt.name
    return verify.verify_output(registered, data, 1, [], SanitiseOptions(faces=FaceMode.OFF))


@pytest.mark.parametrize("make", [dirty_jpeg, dirty_png, lambda: dirty_webp(True), lambda: dirty_webp(False), extended_webp])
def test_strip_keeps_the_exact_length_and_the_pixels(make):
    original = make()
    result = sanitise(original, STRIP_ONLY)
    assert len(result.data) == len(original)
    assert result.report.padding > 0 and result.report.bytes_after == len(original)
    assert pixels(result.data) == pixels(original)
    assert SECRET not in result.data
    assert result.report.format in ("jpeg", "png", "webp")


def test_without_preserve_length_nothing_is_padded():
    result = sanitise(dirty_jpeg(), SanitiseOptions(faces=FaceMode.OFF))
    assert len(result.data) < len(dirty_jpeg()) and result.report.padding == 0


# ---- JPEG ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gap", [1, 2, 3, 4, 5, 7, 100, 65_536, 65_537, 65_538, 65_540, 65_541, 131_074, 131_077, 200_000])
def test_jpeg_filler_fits_any_gap(gap):
    bare = encode(gradient((40, 30)), "JPEG", quality=90)
    padded = Jpeg().pad_to(bare, len(bare) + gap)
    assert len(padded) == len(bare) + gap
    assert Jpeg().findings(padded) == []
    assert pixels(padded) == pixels(bare)
    verify_structure(Jpeg(), padded)


def test_jpeg_filler_is_com_segments_of_zeros_or_fill_bytes():
    assert filler(3) == b"\xff\xff\xff"
    assert filler(6) == b"\xff\xfe\x00\x04\x00\x00"
    pieces = filler(65_539)  # 65537 + 2 cannot be split as 65537 + 2: the last segment must be >= 4
    assert len(pieces) == 65_539 and pieces.count(b"\xff\xfe") == 2


@pytest.mark.parametrize(
    "segment",
    [
        jpeg_segment(0xFE, b"\x00" * 20 + b"\x01"),  # a COM that is not all zeros
        jpeg_segment(0xEF, b"\x00" * 20),  # zeros, but in an APP15 segment
        jpeg_segment(0xE1, b"\x00" * 20),  # zeros, but in an APP1 segment
    ],
)
def test_jpeg_verifier_rejects_anything_but_the_zero_com(segment):
    bare = encode(gradient((40, 30)), "JPEG")
    dirty = bare[:2] + segment + bare[2:]
    assert Jpeg().findings(dirty)
    with pytest.raises(VerificationFailed):
        verify_structure(Jpeg(), dirty)


def test_jpeg_zero_com_from_the_filler_passes_both_parsers():
    bare = encode(gradient((40, 30)), "JPEG")
    verify_structure(Jpeg(), bare[:2] + jpeg_segment(0xFE, bytes(30)) + bare[2:])


# ---- PNG ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gap", [12, 13, 100, 70_000])
def test_png_filler(gap):
    bare = encode(gradient((40, 30)), "PNG")
    padded = Png().pad_to(bare, len(bare) + gap)
    assert len(padded) == len(bare) + gap and b"vlPd" in padded
    assert Png().findings(padded) == []
    assert pixels(padded) == pixels(bare)
    verify_structure(Png(), padded)


@pytest.mark.parametrize("gap", [1, 11])
def test_png_gap_too_small_for_a_chunk_is_refused_readably(gap):
    bare = encode(gradient((40, 30)), "PNG")
    with pytest.raises(LengthNotPreserved, match="at least 12"):
        Png().pad_to(bare, len(bare) + gap)


@pytest.mark.parametrize("chunk", [png_chunk(b"vlPd", bytes(10) + b"\x01"), png_chunk(b"vlPe", bytes(11)), png_chunk(b"prVt", bytes(11))])
def test_png_verifier_rejects_other_fillers(chunk):
    dirty = insert_before_iend(encode(gradient((40, 30)), "PNG"), chunk)
    assert Png().findings(dirty)
    with pytest.raises(VerificationFailed):
        verify_structure(Png(), dirty)


# ---- WebP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lossless", [True, False])
@pytest.mark.parametrize("gap", [26, 28, 1000])
def test_webp_simple_gets_an_extended_header_and_a_filler(lossless, gap):
    bare = encode(gradient((40, 30)), "WEBP", lossless=lossless)
    padded = WebP().pad_to(bare, len(bare) + gap)
    assert len(padded) == len(bare) + gap and padded[12:16] == b"VP8X"
    assert int.from_bytes(padded[4:8], "little") + 8 == len(padded)
    assert WebP().findings(padded) == []
    assert pixels(padded) == pixels(bare)
    verify_structure(WebP(), padded)


@pytest.mark.parametrize("gap", [8, 10, 500])
def test_webp_extended_filler(gap):
    bare = encode(gradient((40, 30)), "WEBP", lossless=True, icc_profile=b"")
    extended = WebP().pad_to(bare, len(bare) + 26)  # now VP8X with a filler
    stripped = WebP().strip(extended + b"", keep_icc=True).data  # filler is an unknown chunk to strip
    padded = WebP().pad_to(stripped, len(stripped) + gap)
    assert len(padded) == len(stripped) + gap
    assert WebP().findings(padded) == [] and pixels(padded) == pixels(bare)


@pytest.mark.parametrize("gap", [1, 7, 9, 25])
def test_webp_odd_or_too_small_gap_is_refused(gap):
    bare = encode(gradient((40, 30)), "WEBP", lossless=True)
    with pytest.raises(LengthNotPreserved, match="even"):
        WebP().pad_to(bare, len(bare) + gap)


@pytest.mark.parametrize("chunk", [riff_chunk(b"vlPd", bytes(9) + b"\x01"), riff_chunk(b"vlPx", bytes(10))])
def test_webp_verifier_rejects_other_fillers(chunk):
    bare = encode(gradient((40, 30)), "WEBP", lossless=True)
    extended = WebP().pad_to(bare, len(bare) + 26)  # a VP8X header and Veil's filler
    payload = extended[12:] + chunk
    dirty = b"RIFF" + struct.pack("<I", len(payload) + 4) + b"WEBP" + payload
    assert WebP().findings(dirty)
    with pytest.raises(VerificationFailed):
        verify_structure(WebP(), dirty)


# ---- other formats and impossible lengths -------------------------------------------------


def dirty_gif() -> bytes:
    return encode(gradient((40, 30)).convert("P"), "GIF", comment=b"Jane Doe was here")


def test_gif_strip_keeps_the_exact_length_and_the_pixels():
    original = dirty_gif()
    result = sanitise(original, STRIP_ONLY)
    assert len(result.data) == len(original) and result.report.padding > 0 and not result.report.reencoded
    assert pixels(result.data) == pixels(original) and b"Jane" not in result.data


@pytest.mark.parametrize("gap", [3, 5, 6, 100, 258, 259, 260, 1000])
def test_gif_filler_is_a_comment_of_zeros_before_the_trailer(gap):
    bare = Gif().strip(dirty_gif(), True).data
    padded = Gif().pad_to(bare, len(bare) + gap)
    assert len(padded) == len(bare) + gap and padded.endswith(b";") and padded[:-1].endswith(b"\x00")
    assert Gif().findings(padded) == []
    assert pixels(padded) == pixels(bare)
    verify_structure(Gif(), padded)


@pytest.mark.parametrize("gap", [1, 2, 4])
def test_gif_gap_too_small_for_a_comment_is_refused_readably(gap):
    bare = Gif().strip(dirty_gif(), True).data
    with pytest.raises(LengthNotPreserved, match="GIF"):
        Gif().pad_to(bare, len(bare) + gap)
    assert Gif().pad_to(b"GIF89a", 6) == b"GIF89a"  # nothing to add: accepted as it is


def test_gif_verifier_rejects_a_comment_that_is_not_all_zeros():
    bare = Gif().strip(dirty_gif(), True).data
    dirty = bare[:-1] + b"\x21\xfe\x03\x00\x00J\x00;"
    assert Gif().findings(dirty)
    with pytest.raises(VerificationFailed):
        verify_structure(Gif(), dirty)


def test_output_longer_than_the_original_is_refused():
    bare = encode(gradient((40, 30)), "JPEG")
    with pytest.raises(LengthNotPreserved, match="longer than the original"):
        Jpeg().pad_to(bare, len(bare) - 1)


# ---- masked re-encodes that must fit --------------------------------------------------------


def test_masked_jpeg_quality_is_lowered_until_it_fits():
    from sample_faces import astronaut

    buffer = io.BytesIO()
    astronaut().save(buffer, "JPEG", quality=92, optimize=True, progressive=True)
    original = buffer.getvalue()
    plain = sanitise(original, SanitiseOptions())  # the masked re-encode, unconstrained
    target = len(plain.data) - 4000  # smaller than the first encoding: quality must drop
    source = Jpeg().strip(original, True).data
    masked = Image.open(io.BytesIO(plain.data))
    masked.load()
    fitted, quality = core._encode_to_fit(Jpeg(), masked, source, None, target)
    assert len(fitted) <= target and quality is not None and quality < 92
    assert len(Jpeg().pad_to(fitted, target)) == target


def test_masked_photo_keeps_its_length_end_to_end():
    from sample_faces import astronaut_jpeg

    original = astronaut_jpeg()
    result = sanitise(original, SanitiseOptions(preserve_length=True))
    assert len(result.data) == len(original) and result.report.faces and result.report.reencoded
    assert result.report.verification["faces"].startswith("no face detectable")


def test_a_re_encode_that_cannot_fit_is_a_readable_error():
    image = gradient((200, 150))
    source = encode(image, "JPEG", quality=95)
    with pytest.raises(LengthNotPreserved, match="cannot be made exactly 300 bytes long"):
        core._encode_to_fit(Jpeg(), image, source, None, 300)


def test_re_encoded_formats_are_refused_with_a_reason_unless_the_length_already_matches():
    tiff = encode(gradient((40, 30)), "TIFF", description="Jane Doe")  # cleaned in place now: same length
    assert len(sanitise(tiff, STRIP_ONLY).data) == len(tiff)
    bmp = encode(gradient((40, 30)), "BMP")
    assert len(sanitise(bmp, STRIP_ONLY).data) == len(bmp)  # rewritten to the same size: nothing to pad
    with pytest.raises(LengthNotPreserved, match="not supported for BMP images"):
        sanitise(bmp + b"trailing owner name", STRIP_ONLY)
