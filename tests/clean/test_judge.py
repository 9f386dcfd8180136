"""Tests of the test helpers: the exiftool judge must fail on dirty images and pass
clean ones, and the dirty fixtures must really be what their docstrings say.

Without these, a judge that always says "clean" would make every core test pass.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image

import exiftool_judge
import fixtures
from exiftool_judge import classify, judge_bytes, structural_findings
from fixtures import ALL_DIRTY, FACTS


# --- clean references: what a correct sanitiser may legitimately output ----------------


def _clean_images() -> dict[str, bytes]:
    p = fixtures.picture()
    icc = fixtures.icc_profile()

    def jpeg(image, **options):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90, **options)
        return buffer.getvalue()

    png_colour = fixtures.png_with_chunks(
        fixtures.pillow_png(p, dpi=(300, 300), icc_profile=icc),
        [
            fixtures.png_chunk(b"gAMA", (45455).to_bytes(4, "big")),
            fixtures.png_chunk(b"bKGD", b"\x00\x01\x00\x02\x00\x03"),
            fixtures.png_chunk(b"sBIT", b"\x08\x08\x08"),
            fixtures.png_exif(fixtures.minimal_orientation_exif(6)),
        ],
    )
    return {
        "jpeg_plain": jpeg(p),
        "jpeg_orientation_only_exif_and_icc": jpeg(p, exif=fixtures.minimal_orientation_exif(6), icc_profile=icc, dpi=(72, 72)),
        "jpeg_bare_no_app_segments": fixtures.bare_jpeg(p),
        "jpeg_progressive": jpeg(p, progressive=True),
        "jpeg_cmyk_adobe": jpeg(p.convert("CMYK"), icc_profile=icc),
        "jpeg_grayscale": jpeg(p.convert("L"), exif=fixtures.minimal_orientation_exif(8)),
        "png_plain": fixtures.pillow_png(p),
        "png_icc_colour_chunks_orientation": png_colour,
        "png_iccp": fixtures.pillow_png(p, icc_profile=icc),
        "png_palette_trns": fixtures.pillow_png(p.convert("P"), transparency=3),
        "png_gray_alpha": fixtures.pillow_png(fixtures.picture(mode="LA")),
        "png_16bit": fixtures.png_rgb16(p),
        "webp_lossy_orientation_icc": fixtures.pillow_webp(p, quality=80, exif=fixtures.minimal_orientation_exif(6), icc_profile=icc),
        "webp_lossless_alpha": fixtures.pillow_webp(fixtures.picture(mode="RGBA"), lossless=True),
        "webp_alpha": fixtures.pillow_webp(fixtures.picture(mode="RGBA"), quality=80, icc_profile=icc),
        "webp_simple": fixtures.pillow_webp(p, quality=80),
    }


@pytest.fixture(scope="module")
def dirty_verdicts(tmp_path_factory):
    images = {name: build() for name, build in ALL_DIRTY.items()}
    return judge_bytes(images, tmp_path_factory.mktemp("dirty"))


@pytest.fixture(scope="module")
def clean_verdicts(tmp_path_factory):
    return judge_bytes(_clean_images(), tmp_path_factory.mktemp("clean"))


@pytest.mark.parametrize("name", list(ALL_DIRTY))
def test_judge_flags_dirty_fixture(dirty_verdicts, name):
    verdict = dirty_verdicts[name]
    assert verdict.forbidden, f"the judge found nothing in the dirty fixture {name}"
    missing = [e for e in FACTS[name].evidence if not any(e in item for item in verdict.forbidden)]
    assert not missing, f"{name}: judge did not flag {missing}\n{verdict.explain()}"


@pytest.mark.parametrize("name", list(_clean_images()))
def test_judge_passes_clean_image(clean_verdicts, name):
    verdict = clean_verdicts[name]
    assert verdict.clean, verdict.explain()


def test_judge_allows_orientation_only_exif(clean_verdicts):
    verdict = clean_verdicts["jpeg_orientation_only_exif_and_icc"]
    assert verdict.tags.get("IFD0:Orientation") == "Rotate 90 CW"
    assert any(tag.startswith("ICC") for tag in verdict.tags), "the ICC profile should be visible (and allowed)"


# --- single injections: each kind of leftover alone is enough to fail -------------------

@functools.cache
def _base_jpeg() -> bytes:
    return fixtures.bare_jpeg(fixtures.picture())


def _exif_only(**tags) -> bytes:
    import piexif

    zeroth = {piexif.ImageIFD.Orientation: 1}
    exif, gps = {}, {}
    for key, value in tags.items():
        if key in ("Make", "Model", "Artist", "Copyright", "Software"):
            zeroth[getattr(piexif.ImageIFD, key)] = value
        elif key == "GPSLatitudeRef":
            gps[piexif.GPSIFD.GPSLatitudeRef] = value
        else:
            exif[getattr(piexif.ExifIFD, key)] = value
    return piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps})


_INJECTIONS = {
    "exif_make": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.exif_app1(_exif_only(Make=b"VeilCam"))]),
    "exif_software": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.exif_app1(_exif_only(Software=b"x"))]),
    "exif_datetime": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.exif_app1(_exif_only(DateTimeOriginal=b"2024:01:01 00:00:00"))]),
    "exif_gps_ref_only": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.exif_app1(_exif_only(GPSLatitudeRef=b"N"))]),
    "exif_body_serial": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.exif_app1(_exif_only(BodySerialNumber=b"1"))]),
    "com": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.com_segment("x")]),
    "app15": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.vendor_app15()]),
    "app3_unknown": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.jpeg_segment(0xE3, b"\x00\x01")]),
    "jpeg_one_trailing_byte": lambda: _base_jpeg() + b"\x00",
    "jfif_thumbnail": lambda: fixtures.insert_jpeg_segments(_base_jpeg(), [fixtures.jfif_app0((2, 2))]),
    "png_text": lambda: fixtures.png_with_chunks(fixtures.pillow_png(fixtures.picture()), [fixtures.png_text("Software", "x")]),
    "png_time": lambda: fixtures.png_with_chunks(fixtures.pillow_png(fixtures.picture()), [fixtures.png_time()]),
    "png_private_chunk": lambda: fixtures.png_with_chunks(fixtures.pillow_png(fixtures.picture()), [fixtures.png_private()]),
    "png_trailing_byte": lambda: fixtures.pillow_png(fixtures.picture()) + b"\x00",
    "webp_xmp": lambda: fixtures.pillow_webp(fixtures.picture(), xmp=fixtures.xmp_packet()),
    "webp_unknown_chunk": lambda: fixtures.webp_with_chunks(fixtures.pillow_webp(fixtures.picture()), [fixtures.riff_chunk(b"ABCD", b"12")]),
    "webp_trailing_bytes": lambda: fixtures.pillow_webp(fixtures.picture()) + b"\x00\x00",
}


@pytest.fixture(scope="module")
def injected_verdicts(tmp_path_factory):
    return judge_bytes({name: build() for name, build in _INJECTIONS.items()}, tmp_path_factory.mktemp("injected"))


@pytest.mark.parametrize("name", list(_INJECTIONS))
def test_judge_flags_single_injection(injected_verdicts, name):
    assert not injected_verdicts[name].clean, f"{name} should have been flagged"


# --- unit tests of the rules and the structure walk (no exiftool needed) ---------------


def test_classify_rules():
    entries = [
        ("IFD0", "Orientation", "Rotate 90 CW"),
        ("File", "ExifByteOrder", "Big-endian"),
        ("ICC_Profile", "ProfileCopyright", "Copyright Apple"),  # ICC allowed even with "Copyright"
        ("ICC-header", "ProfileCreator", "Apple"),
        ("Composite", "ImageSize", "64x48"),
        ("IFD0", "Make", "VeilCam"),
        ("ExifIFD", "ColorSpace", "sRGB"),  # EXIF beyond Orientation
        ("XMP-x", "XMPToolkit", "x"),
        ("MPF0", "MPFVersion", "0100"),
        ("Ducky", "Quality", "80%"),  # a vendor group: not on the allow list
        ("File", "Comment", "hi"),
        ("PNG", "Author", "me"),
        ("ExifTool", "Warning", "[minor] Trailer data after PNG IEND chunk"),
        ("ExifTool", "Warning", "Bad length ICC_Profile (length 1886547814)"),
        ("ExifTool", "Error", "File format error"),
    ]
    forbidden, warnings = classify(entries)
    assert forbidden == [
        "IFD0:Make",
        "ExifIFD:ColorSpace",
        "XMP-x:XMPToolkit",
        "MPF0:MPFVersion",
        "Ducky:Quality",
        "File:Comment",
        "PNG:Author",
        "ExifTool:Warning: [minor] Trailer data after PNG IEND chunk",
        "ExifTool:Error: File format error",
    ]
    assert warnings == ["Bad length ICC_Profile (length 1886547814)"]


def test_structure_walk_finds_trailers_and_segments():
    base = _base_jpeg()
    assert structural_findings(base) == []
    assert structural_findings(base + b"xyz") == ["Structure:TrailingData (3 bytes after EOI)"]
    progressive = fixtures.bare_jpeg(fixtures.picture(), progressive=True)
    assert structural_findings(progressive) == []
    assert structural_findings(progressive + b"\xff\xd8") == ["Structure:TrailingData (2 bytes after EOI)"]
    assert structural_findings(base[: len(base) // 2])[-1].startswith("Structure:Unparseable")
    png = fixtures.pillow_png(fixtures.picture())
    assert structural_findings(png) == []
    assert structural_findings(png + b"\x00") == ["Structure:TrailingData (1 bytes after IEND)"]
    webp = fixtures.pillow_webp(fixtures.picture())
    assert structural_findings(webp) == []
    assert structural_findings(b"\x00\x00\x00\x0cJXL \r\n\x87\n") == ["Structure:UnknownFormat"]
    assert structural_findings(b"GIF89a")[-1].startswith("Structure:Unparseable")


def test_judge_skips_without_exiftool(monkeypatch):
    monkeypatch.setattr(exiftool_judge, "EXIFTOOL", None)
    with pytest.raises(pytest.skip.Exception, match="exiftool is not installed"):
        exiftool_judge.run_exiftool([])


# --- the fixtures are what they claim ----------------------------------------------------


@pytest.mark.parametrize("name", list(ALL_DIRTY))
def test_fixture_displays_upright_only_when_orientation_is_honoured(name):
    data = ALL_DIRTY[name]()
    facts = FACTS[name]
    upright = fixtures.upright_reference(data)
    assert upright.size == (fixtures.WIDTH, fixtures.HEIGHT)
    reference = fixtures.picture(mode="RGBA" if upright.mode == "RGBA" else "RGB")
    if name == "png_gray_alpha":
        reference = fixtures.picture(mode="LA").convert("RGBA")
    elif name == "jpeg_grayscale":
        reference = reference.convert("L").convert(upright.mode)
    elif name == "png_palette_trns":
        reference = Image.open(io.BytesIO(data)).convert("RGBA")  # palette + transparent index, orientation 1
    diff = np.abs(np.asarray(upright, dtype=np.int16) - np.asarray(reference, dtype=np.int16)).mean()
    assert diff < 8, f"{name}: upright picture differs from the reference (mean {diff:.1f})"
    stored = Image.open(io.BytesIO(data))
    assert stored.format.lower() in (facts.format, "mpo")
    assert (stored.getexif().get(0x0112) or 1) == facts.orientation
    if facts.orientation != 1:
        as_stored = stored.convert(upright.mode)
        if as_stored.size == upright.size:
            ignored = np.abs(np.asarray(as_stored, dtype=np.int16) - np.asarray(upright, dtype=np.int16)).mean()
            assert ignored > 3 * diff + 10, f"{name}: looks upright even without honouring orientation"


def test_pixels_equal_helper():
    a = fixtures.jpeg_exif()
    stripped = fixtures.insert_jpeg_segments(fixtures._jpeg_body(), [])
    assert fixtures.pixels_equal(a, stripped)
    assert fixtures.pixels_equal(fixtures.ALL_DIRTY["jpeg_orientation_6"](), fixtures.ALL_DIRTY["jpeg_orientation_6"]())
    other = fixtures.bare_jpeg(fixtures.picture(seed=4))
    assert not fixtures.pixels_equal(a, other)
    # orientation 6 honoured vs orientation 1 of the same stored pixels: not equal
    six = fixtures.ALL_DIRTY["jpeg_orientation_6"]()
    body = fixtures._jpeg_body(orientation=6)
    assert not fixtures.pixels_equal(six, body)


def test_sixteen_bit_png_keeps_low_byte():
    data = fixtures.png_16bit()
    assert data[24] == 16  # IHDR bit depth


def test_hostile_headers_claim_their_size():
    assert Image.open(io.BytesIO(fixtures.jpeg_claiming(300, 200))).size == (300, 200)
    assert Image.open(io.BytesIO(fixtures.png_claiming(300, 200))).size == (300, 200)
    assert Image.open(io.BytesIO(fixtures.webp_claiming(300, 200))).size == (300, 200)  # header only: decoding fails
    for build in (fixtures.jpeg_claiming, fixtures.png_claiming, fixtures.webp_claiming):
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(build(16000, 16000)))
