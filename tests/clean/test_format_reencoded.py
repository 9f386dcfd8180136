"""Formats Veil cleaned by re-encoding until they learnt a lossless strip (BMP and PNM
still are; HEIC/HEIF and AVIF are now rewritten without touching the coded image, see
test_format_heif_lossless.py, and TIFF is cleaned in place), on fixtures built by
tests/fixtures.py, judged by exiftool.

What must hold: the output is clean, says `reencoded: true` (HEIF/AVIF/TIFF: false),
shows the same picture upright with identical pixels, declares no rotation of its own
when it was re-encoded (it is in the pixels; the lossless ones keep the input's: irot/imir,
the TIFF Orientation tag), keeps the ICC profile unless asked to drop it, and a second
pass has nothing left to remove.
"""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

import fixtures
from exiftool_judge import judge_bytes
from fixtures import REENCODED_DIRTY
from veil.clean.core import sanitise
from veil.clean.errors import MalformedImage, SanitiseError, UnsupportedFormat
from veil.clean.formats import isobmff, sniff
from veil.clean.formats.heif import Avif, Heif
from veil.clean.formats.plain import Bmp, Pnm
from veil.clean.formats.tiff import Tiff, iter_ifds
from veil.clean.options import FaceMode, SanitiseOptions

OFF = SanitiseOptions(faces=FaceMode.OFF)
NAMES = list(REENCODED_DIRTY)
# The container is rewritten (HEIF/AVIF) or cleaned in place (TIFF); the coded image is not touched.
LOSSLESS = {"heif_dirty", "avif_dirty", "tiff_dirty", "tiff_multipage"}
EXPECTED = {
    "tiff_dirty": ("tiff", {"camera", "exif", "iptc", "owner", "xmp", "private-chunks"}, 6),
    "tiff_multipage": ("tiff", {"owner", "exif"}, 1),
    "heif_dirty": ("heif", {"exif", "gps", "camera", "owner", "serial-number", "xmp", "secondary-images"}, 1),
    "avif_dirty": ("avif", {"exif", "gps", "camera", "owner", "serial-number", "xmp"}, 6),
    "bmp_v5": ("bmp", {"trailer"}, 1),
    "ppm_with_comments": ("pnm", {"comment"}, 1),
}


@pytest.fixture(scope="module")
def results():
    return {name: sanitise(build(), OFF) for name, build in REENCODED_DIRTY.items()}


@pytest.fixture(scope="module")
def verdicts(results, tmp_path_factory):
    return judge_bytes({name: result.data for name, result in results.items()}, tmp_path_factory.mktemp("reencoded"))


@pytest.fixture(scope="module")
def input_verdicts(tmp_path_factory):
    return judge_bytes({name: build() for name, build in REENCODED_DIRTY.items()}, tmp_path_factory.mktemp("reencoded_in"))


@pytest.mark.parametrize("name", NAMES)
def test_the_judge_sees_the_dirt_in_the_input(input_verdicts, name):
    assert not input_verdicts[name].clean, f"{name}: the fixture carries no metadata the judge can see"


@pytest.mark.parametrize("name", NAMES)
def test_output_is_clean_and_says_whether_it_was_reencoded(results, verdicts, name):
    fmt, removed, orientation = EXPECTED[name]
    report = results[name].report
    assert verdicts[name].clean, verdicts[name].explain()
    assert report.format == fmt and report.reencoded is (name not in LOSSLESS)
    assert removed <= set(report.metadata_removed), report.metadata_removed
    assert report.orientation == orientation
    assert b"Jane" not in results[name].data and b"SN-0042" not in results[name].data


@pytest.mark.parametrize("name", NAMES)
def test_output_shows_the_same_picture_upright(results, name):
    data, output = REENCODED_DIRTY[name](), results[name].data
    declared = fixtures._open(output).getexif().get(0x0112) or 1
    if name in LOSSLESS:  # the container's rotation is kept, as the input's reader saw it
        assert declared == (fixtures._open(data).getexif().get(0x0112) or 1)
    else:
        assert declared == 1, "the rotation must be in the pixels"
    assert fixtures.upright_reference(output).size == fixtures.upright_reference(data).size
    assert fixtures.pixels_equal(data, output)


def test_tiff_pages_are_all_kept(results):
    output = results["tiff_multipage"].data
    with Image.open(io.BytesIO(output)) as image:
        assert image.n_frames == 3
    modes = []
    with Image.open(io.BytesIO(REENCODED_DIRTY["tiff_multipage"]())) as source, Image.open(io.BytesIO(output)) as written:
        for index in range(3):
            source.seek(index)
            written.seek(index)
            modes.append(written.mode)
            assert written.mode == source.mode and written.tobytes() == source.tobytes()
    assert modes == ["RGB", "L", "1"]


def test_tiff_keeps_only_decoding_tags():
    output = sanitise(REENCODED_DIRTY["tiff_dirty"](), OFF).data
    assert not Tiff().findings(output)
    assert Tiff().findings(REENCODED_DIRTY["tiff_dirty"]())
    for _, entries in iter_ifds(output):
        assert {0x013B, 0x8298, 0x010F, 700, 33723, 34665, 34853, 65000}.isdisjoint(entries)


@pytest.mark.parametrize("name", ["tiff_dirty", "heif_dirty", "avif_dirty"])
def test_icc_kept_by_default_and_dropped_on_request(results, name):
    assert fixtures._open(results[name].data).info.get("icc_profile"), "ICC profile lost"
    dropped = sanitise(REENCODED_DIRTY[name](), SanitiseOptions(faces=FaceMode.OFF, keep_icc=False))
    assert not fixtures._open(dropped.data).info.get("icc_profile")
    assert "icc" in dropped.report.metadata_removed


@pytest.mark.parametrize("faces", [FaceMode.OFF, FaceMode.MASK])
def test_an_icc_tag_that_holds_no_icc_profile_is_not_kept(faces):
    # Found by tests/fuzz: a damaged offset made a TIFF's ICC tag point at its Artist tag,
    # and the owner's name was written back into the cleaned TIFF as its "colour profile".
    buffer = io.BytesIO()
    fixtures.picture().save(buffer, "TIFF", icc_profile=f"owner={fixtures.SECRET_NAME}".encode() * 20)
    result = sanitise(buffer.getvalue(), SanitiseOptions(faces=faces))
    assert fixtures.SECRET_NAME.encode() not in result.data
    assert not fixtures._open(result.data).info.get("icc_profile")
    assert "icc" in result.report.metadata_removed and result.report.icc == "dropped"


def test_an_icc_profile_is_cut_to_the_size_its_header_declares():
    from veil.clean.formats.base import icc_profile

    from veil.clean.formats.icc import neutralise

    profile = fixtures.icc_profile()
    assert icc_profile(profile) == neutralise(profile)  # same colours, neutral text
    assert icc_profile(profile + f"owner={fixtures.SECRET_NAME}".encode()) == neutralise(profile)
    assert icc_profile(profile[:-1]) is None and icc_profile(b"") is None and icc_profile(None) is None


def test_heif_keeps_the_primary_image_only(results):
    output = results["heif_dirty"].data
    container = isobmff.parse(output)
    assert list(container.items.values()) == [b"hvc1"] and not container.refs
    assert Heif().findings(output) == []
    assert Heif().findings(REENCODED_DIRTY["heif_dirty"]())


def test_heif_iphone_style_rotation_is_not_applied_twice():
    """irot in the container and an EXIF Orientation of 6: libheif applies irot, Veil must
    not then rotate by EXIF again (the output's size is the displayed size, its pixels
    the input's: the irot stays, the EXIF goes)."""
    import pillow_heif

    stored = fixtures.picture((128, 96)).transpose(Image.Transpose.ROTATE_90)  # what a viewer must turn back
    heif = pillow_heif.from_pillow(stored)
    buffer = io.BytesIO()
    heif.save(buffer, quality=90, exif=fixtures.exif_bytes(orientation=6, thumbnail=False))  # pillow-heif writes irot from it
    data = buffer.getvalue()
    viewer = fixtures.upright_reference(data)  # pillow-heif: irot applied, EXIF orientation reset
    result = sanitise(data, OFF)
    assert fixtures.upright_reference(result.data).size == viewer.size
    assert fixtures.pixels_equal(data, result.data) and not result.report.reencoded
    assert list(isobmff.parse(result.data).items.values()) == [b"hvc1"]


def test_avif_rotation_stays_in_the_container(results):
    output = results["avif_dirty"].data
    container = isobmff.parse(output)
    assert list(container.items.values()) == [b"av01"]
    assert fixtures.upright_reference(output).size == (128, 96)
    assert results["avif_dirty"].report.orientation == 6 and fixtures._open(output).getexif().get(0x0112) == 6
    assert Avif().findings(output) == []


@pytest.mark.parametrize("name", NAMES)
def test_second_pass_removes_nothing(results, name):
    again = sanitise(results[name].data, OFF)
    assert again.report.metadata_removed == [], again.report.metadata_removed


def test_plain_formats_findings():
    bmp = sanitise(REENCODED_DIRTY["bmp_v5"](), OFF).data
    assert Bmp().findings(bmp) == [] and Bmp().findings(bmp + b"x")
    ppm = sanitise(REENCODED_DIRTY["ppm_with_comments"](), OFF).data
    assert ppm.startswith(b"P6") and b"#" not in ppm and Pnm().findings(ppm) == []
    assert Pnm().findings(REENCODED_DIRTY["ppm_with_comments"]())


# --- hostile input -----------------------------------------------------------------------


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + _box(b"meta", b"\x20\x00\x00\x00"), id="meta-version-32"),
        pytest.param(_box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + b"\xff\xff\xff\xf0mdat", id="box-past-end"),
        pytest.param(_box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1") + b"\x00\x00\x00\x01mdat" + b"\x80" + bytes(7), id="huge-64-bit-size"),
        pytest.param(_box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic"), id="no-meta"),
        pytest.param(b"II*\x00\x08\x00\x00\x00\xff\xff", id="tiff-ifd-past-end"),
        pytest.param(b"II*\x00\x08\x00\x00\x00\x00\x00\x08\x00\x00\x00", id="tiff-ifd-loop"),
        pytest.param(b"P6\n0 0\n255\n", id="ppm-zero-size"),
        pytest.param(b"BM" + bytes(30), id="bmp-empty-header"),
    ],
)
def test_hostile_containers_are_refused_before_decoding(data):
    with pytest.raises((MalformedImage, UnsupportedFormat)):
        sanitise(data, OFF)


def test_every_new_format_is_sniffed():
    for name, build in REENCODED_DIRTY.items():
        assert sniff(build()).name == EXPECTED[name][0]


def test_heif_with_faces_on_masks_from_the_source_pixels():
    """Default options on a HEIC with a face: the face is masked, output still clean HEIC."""
    import pillow_heif
    from sample_faces import ASTRONAUT_FACE, astronaut

    heif = pillow_heif.from_pillow(astronaut())
    buffer = io.BytesIO()
    heif.save(buffer, quality=90, exif=fixtures.exif_bytes(thumbnail=False))
    result = sanitise(buffer.getvalue())
    assert result.report.format == "heif" and result.report.faces and result.report.reencoded
    x0, y0, x1, y1 = ASTRONAUT_FACE
    face = fixtures.upright_reference(result.data).crop((x0 + 10, y0 + 10, x1 - 10, y1 - 10))
    assert max(max(band) for band in face.getextrema()) < 60, "face region is not blacked out"


def test_broken_heif_data_is_a_sanitise_error():
    data = REENCODED_DIRTY["heif_dirty"]()
    with pytest.raises(SanitiseError):
        sanitise(data[: len(data) - 2000], OFF)
