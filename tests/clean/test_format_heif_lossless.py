"""HEIC/HEIF and AVIF cleaned without re-encoding: the item tables are rewritten, the
coded image is copied, the output can be padded to the input's exact length.

Fixtures are built here with pillow-heif (HEIC: EXIF with GPS, camera, owner and serial,
XMP, an ICC profile, a thumbnail, a second image; a 512-px-tile grid like an iPhone's)
and Pillow (AVIF: the same metadata, rotated by irot, or with an alpha plane). Photos
from ../shared/data are used where present (an iPhone HEIC with an HDR gain map).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fixtures
from exiftool_judge import exiftool_available, judge_bytes
from veil.clean import core, verify
from veil.clean.core import sanitise
from veil.clean.errors import LengthNotPreserved, MalformedImage, SanitiseError, UnsupportedFormat, VerificationFailed
from veil.clean.formats import heif_items, heif_lossless, sniff
from veil.clean.formats.heif import Avif, Heif
from veil.clean.options import FaceMode, SanitiseOptions

OFF = SanitiseOptions(faces=FaceMode.OFF)
KEEP_LENGTH = SanitiseOptions(faces=FaceMode.OFF, preserve_length=True)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
IPHONE = DATA / "metadata" / "heic" / "ianare_iphone_13_pro_max.HEIC"


def _heic(image: Image.Image, *, thumbnails=(), second: Image.Image | None = None, **save) -> bytes:
    import pillow_heif

    heif = pillow_heif.from_pillow(image)
    heif.info["thumbnails"] = list(thumbnails)
    if second is not None:
        heif.add_from_pillow(second)
    buffer = io.BytesIO()
    heif.save(buffer, quality=90, exif=fixtures.exif_bytes(), xmp=fixtures.xmp_packet(), icc_profile=fixtures.icc_profile(), **save)
    return buffer.getvalue()


def heic_everything() -> bytes:
    """One image with every kind of metadata, a 64-px thumbnail and a second image."""
    return _heic(fixtures.picture((256, 192)), thumbnails=[64], second=fixtures.picture((64, 48), seed=3))


def heic_grid() -> bytes:
    """An iPhone-like grid: 1100x700 in 512x512 HEVC tiles (edge tiles cropped by the grid)."""
    return _heic(fixtures.picture((1100, 700)), thumbnails=[128], tile_size=512)


def avif_rotated() -> bytes:
    return fixtures.avif_dirty(orientation=6)


def avif_alpha() -> bytes:
    """RGBA: libavif writes the alpha plane as an auxiliary image of the colour image."""
    buffer = io.BytesIO()
    fixtures.picture((96, 64), mode="RGBA").save(buffer, "AVIF", quality=90, exif=fixtures.exif_bytes(thumbnail=False), xmp=fixtures.xmp_packet())
    return buffer.getvalue()


BUILDERS = {"heic_everything": heic_everything, "heic_grid": heic_grid, "avif_rotated": avif_rotated, "avif_alpha": avif_alpha}


@pytest.fixture(scope="module")
def inputs() -> dict[str, bytes]:
    return {name: build() for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def stripped(inputs):
    return {name: sanitise(data, OFF) for name, data in inputs.items()}


@pytest.fixture(scope="module")
def kept_length(inputs):
    return {name: sanitise(data, KEEP_LENGTH) for name, data in inputs.items()}


def decoded(data: bytes) -> np.ndarray:
    """The pixels as the format's reader gives them (pillow-heif applies irot/imir)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


def item_types(data: bytes) -> list[bytes]:
    return [item.type for item in heif_items.read(data).items.values()]


# --- the strip ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_the_fixture_carries_what_must_go(inputs, name):
    types = item_types(inputs[name])
    assert b"Exif" in types and b"mime" in types, types
    assert fixtures.SECRET_NAME.encode() in inputs[name]


@pytest.mark.parametrize("name", BUILDERS)
def test_strip_is_lossless_and_leaves_only_the_picture(inputs, stripped, name):
    result = stripped[name]
    assert not result.report.reencoded
    assert np.array_equal(decoded(result.data), decoded(inputs[name])), "the decoded pixels changed"
    assert {b"Exif", b"mime"}.isdisjoint(item_types(result.data))
    assert fixtures.SECRET_NAME.encode() not in result.data and fixtures.SECRET_SERIAL.encode() not in result.data
    assert sniff(result.data).findings(result.data) == []
    assert {"exif", "gps", "xmp", "owner", "serial-number", "camera"} <= set(result.report.metadata_removed)


@pytest.mark.parametrize("name", BUILDERS)
def test_the_coded_image_is_copied_byte_for_byte(inputs, stripped, name):
    before, after = heif_items.read(inputs[name]), heif_items.read(stripped[name].data)
    kept = heif_items.picture_items(after)
    assert kept == set(after.items) and after.primary == before.primary
    for item_id in kept:
        assert after.item_bytes(stripped[name].data, item_id) == before.item_bytes(inputs[name], item_id)


def test_thumbnail_and_second_image_are_gone(inputs, stripped):
    assert b"thmb" in [ref.kind for ref in heif_items.read(inputs["heic_everything"]).refs]
    after = heif_items.read(stripped["heic_everything"].data)
    assert item_types(stripped["heic_everything"].data) == [b"hvc1"] and after.refs == []
    assert {"thumbnail", "secondary-images"} <= set(stripped["heic_everything"].report.metadata_removed)


def test_grid_keeps_its_tiles_and_its_descriptor(inputs, stripped):
    before, after = heif_items.read(inputs["heic_grid"]), heif_items.read(stripped["heic_grid"].data)
    assert before.items[before.primary].type == b"grid"
    assert after.targets(b"dimg", after.primary) == before.targets(b"dimg", before.primary)
    assert len(after.targets(b"dimg", after.primary)) == 6  # 3 x 2 tiles of 512
    assert sorted(item_types(stripped["heic_grid"].data)) == sorted([b"grid"] + [b"hvc1"] * 6)
    assert after.locations[after.primary].method == before.locations[before.primary].method
    assert decoded(stripped["heic_grid"].data).shape == (700, 1100, 3)


def test_alpha_plane_is_kept_as_part_of_the_picture(inputs, stripped):
    after = heif_items.read(stripped["avif_alpha"].data)
    aux = [ref.source for ref in after.refs if ref.kind == b"auxl"]
    assert len(aux) == 1 and heif_items.is_alpha(after, aux[0])
    assert decoded(stripped["avif_alpha"].data).shape[2] == 4


def test_avif_rotation_stays_declared_by_the_container(inputs, stripped):
    result = stripped["avif_rotated"]
    meta = heif_items.read(result.data)
    assert meta.properties_of(meta.primary, b"irot") == heif_items.read(inputs["avif_rotated"]).properties_of(meta.primary, b"irot")
    assert result.report.orientation == 6 and fixtures.upright_reference(result.data).size == (128, 96)


def test_colour_profile_is_kept_with_neutral_text(inputs, stripped):
    from veil.clean.formats import icc

    with Image.open(io.BytesIO(stripped["heic_everything"].data)) as image:
        profile = image.info.get("icc_profile")
    assert profile and icc.is_neutral(profile) and len(profile) == len(fixtures.icc_profile())


@pytest.mark.parametrize("name", BUILDERS)
def test_a_second_pass_finds_nothing_to_remove(stripped, name):
    again = sanitise(stripped[name].data, OFF)
    assert again.report.metadata_removed == [] and again.data == stripped[name].data


# --- exiftool's view --------------------------------------------------------------------------

_IDENTIFYING = ("GPS", "Make", "Model", "Serial", "Owner", "Artist", "Copyright", "Thumbnail")


def _assert_judged_clean(verdicts):
    for name, verdict in verdicts.items():
        assert verdict.clean, verdict.explain()
        tags = " ".join(tag for tag in verdict.tags if not tag.startswith("ICC"))  # a profile's own fields: colour
        assert not [word for word in _IDENTIFYING if word in tags], f"{name}: {tags}"
        assert not any(key.startswith("XMP") for key in verdict.tags), name


@pytest.mark.skipif(not exiftool_available(), reason="exiftool is not installed")
def test_exiftool_sees_the_metadata_in_the_inputs(inputs, tmp_path):
    verdicts = judge_bytes(inputs, tmp_path)
    for name, verdict in verdicts.items():
        assert any(tag.startswith("GPS:") for tag in verdict.tags), f"{name}: the judge must be able to fail"


@pytest.mark.skipif(not exiftool_available(), reason="exiftool is not installed")
def test_exiftool_finds_nothing_in_the_outputs(stripped, kept_length, tmp_path):
    outputs = {name: r.data for name, r in stripped.items()} | {f"{name}_padded": r.data for name, r in kept_length.items()}
    _assert_judged_clean(judge_bytes(outputs, tmp_path))


# --- preserve_length ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_the_declared_length_holds_without_re_encoding(inputs, kept_length, name):
    result = kept_length[name]
    assert len(result.data) == len(inputs[name]) and result.report.padding > 0 and not result.report.reencoded
    assert np.array_equal(decoded(result.data), decoded(inputs[name]))
    assert sniff(result.data).findings(result.data) == []


@pytest.mark.parametrize("gap", [1, 7, 8, 9, 1000, 70_000])
def test_any_gap_is_filled_with_zeros_at_the_end_of_mdat(stripped, gap):
    clean = stripped["heic_everything"].data
    padded = Heif().pad_to(clean, len(clean) + gap)
    assert len(padded) == len(clean) + gap and padded.endswith(bytes(gap))
    assert [box.kind for box in heif_items.read(padded).top] == [b"ftyp", b"meta", b"mdat"]
    assert Heif().findings(padded) == [] and np.array_equal(decoded(padded), decoded(clean))
    verify.verify_output(sniff(padded), padded, 1, [], OFF)


def test_a_longer_output_is_refused(stripped):
    clean = stripped["avif_rotated"].data
    with pytest.raises(LengthNotPreserved, match="longer than the original"):
        Avif().pad_to(clean, len(clean) - 1)


def _append_top_level(data: bytes, kind: bytes, body: bytes) -> bytes:
    return data + struct.pack(">I", 8 + len(body)) + kind + body


def _grow_mdat_with(data: bytes, tail: bytes) -> bytes:
    padded = Heif().pad_to(data, len(data) + len(tail))
    return padded[: len(data)] + tail if padded.endswith(bytes(len(tail))) else pytest.fail("mdat is not last")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda d: _grow_mdat_with(d, b"Jane" + bytes(12)), id="text-in-unreferenced-mdat"),
        pytest.param(lambda d: _append_top_level(d, b"free", bytes(16)), id="free-box"),
        pytest.param(lambda d: _append_top_level(d, b"uuid", b"\x00" * 16 + b"Jane"), id="uuid-box"),
        pytest.param(lambda d: d + b"Jane", id="bytes-after-the-last-box"),
    ],
)
def test_findings_accept_only_veils_filler(stripped, tamper):
    dirty = tamper(stripped["heic_everything"].data)
    assert Heif().findings(dirty)
    with pytest.raises((VerificationFailed, MalformedImage)):
        verify.verify_output(sniff(dirty), dirty, 1, [], OFF)


@pytest.mark.parametrize("name", BUILDERS)
def test_findings_flag_every_dirty_input(inputs, name):
    found = " ".join(sniff(inputs[name]).findings(inputs[name]))
    assert "Exif" in found and "mime" in found, found


def test_findings_flag_an_auxiliary_image_that_is_not_alpha(inputs, stripped):
    """A depth or gain map: the second image declared auxiliary (auxl) with a depth auxC."""
    meta = heif_items.read(inputs["heic_everything"])
    primary, other = meta.primary, next(i for i, item in meta.items.items() if item.type == b"hvc1" and i != meta.primary)
    depth = heif_lossless._box(b"auxC", bytes(4), b"urn:mpeg:hevc:2015:auxid:2\x00")
    meta.properties.append(depth)
    meta.associations[other].append((len(meta.properties), True))
    meta.refs = [heif_items.Reference(b"auxl", other, (primary,))]
    plan = heif_lossless.Plan((b"heic", bytes(4), (b"mif1", b"heic")), meta, [primary, other], meta.properties, {i: meta.associations[i] for i in (primary, other)}, frozenset())
    written = heif_lossless.write(inputs["heic_everything"], plan)
    assert any("besides the picture" in finding for finding in Heif().findings(written))


def _with_user_description(data: bytes, essential: bool) -> bytes:
    """The input with a 'udes' (user description) property naming the owner on its primary."""
    meta = heif_items.read(data)
    udes = heif_lossless._full_box(b"udes", 0, 0, b"en\x00" + fixtures.SECRET_NAME.encode() + b"\x00\x00\x00")
    meta.properties.append(udes)
    meta.associations[meta.primary].append((len(meta.properties), essential))
    items = list(meta.items)
    plan = heif_lossless.Plan((b"heic", bytes(4), (b"mif1", b"heic")), meta, items, meta.properties, {i: meta.associations.get(i, []) for i in items}, frozenset())
    return heif_lossless.write(data, plan)


def test_a_descriptive_property_is_dropped(inputs):
    dirty = _with_user_description(inputs["heic_everything"], essential=False)
    assert fixtures.SECRET_NAME.encode() in dirty and any("udes" in f for f in Heif().findings(dirty))
    result = sanitise(dirty, KEEP_LENGTH)
    assert not result.report.reencoded and "private-chunks" in result.report.metadata_removed
    assert fixtures.SECRET_NAME.encode() not in result.data and np.array_equal(decoded(result.data), decoded(dirty))


def test_an_essential_property_veil_does_not_know_means_a_re_encode(inputs):
    result = sanitise(_with_user_description(inputs["heic_everything"], essential=True), OFF)
    assert result.report.reencoded and fixtures.SECRET_NAME.encode() not in result.data


def test_findings_flag_a_profile_with_text(inputs):
    assert any("colour property" in finding for finding in Heif().findings(inputs["heic_everything"]))


# --- masking faces: a re-encode that must fit -------------------------------------------------


def _astronaut_heic() -> bytes:
    from sample_faces import astronaut

    return _heic(astronaut())


def _astronaut_avif() -> bytes:
    from sample_faces import astronaut

    buffer = io.BytesIO()
    astronaut().save(buffer, "AVIF", quality=90, exif=fixtures.exif_bytes(thumbnail=False))
    return buffer.getvalue()


@pytest.mark.parametrize("build", [_astronaut_heic, _astronaut_avif], ids=["heic", "avif"])
def test_masked_photo_keeps_the_declared_length(build):
    original = build()
    result = sanitise(original, SanitiseOptions(preserve_length=True))
    assert len(result.data) == len(original) and result.report.faces and result.report.reencoded
    assert result.report.verification["faces"].startswith("no face detectable")
    assert sniff(result.data).findings(result.data) == []


@pytest.mark.parametrize("image_format", [Heif(), Avif()], ids=["heic", "avif"])
def test_quality_is_lowered_until_the_re_encode_fits(image_format):
    from sample_faces import astronaut

    pixels = astronaut()
    first = image_format.encode(pixels, b"", None)
    fitted, _ = core._encode_to_fit(image_format, pixels, b"", None, len(first) - 2000)
    assert len(fitted) <= len(first) - 2000
    assert len(image_format.pad_to(fitted, len(first) - 2000)) == len(first) - 2000


@pytest.mark.parametrize("image_format", [Heif(), Avif()], ids=["heic", "avif"])
def test_a_re_encode_that_cannot_fit_is_a_readable_error(image_format):
    with pytest.raises(LengthNotPreserved, match="cannot be made exactly 300 bytes long"):
        core._encode_to_fit(image_format, fixtures.picture((200, 150)), b"", None, 300)


# --- fallback and hostile files --------------------------------------------------------------


def test_tables_veil_does_not_rewrite_fall_back_to_a_re_encode(inputs, monkeypatch):
    def refuse(*args):
        raise heif_items.NotRewritable("pretend the data is in another file")

    monkeypatch.setattr(heif_lossless, "plan", refuse)
    result = sanitise(inputs["heic_everything"], OFF)
    assert result.report.reencoded and "exif" in result.report.metadata_removed
    assert Heif().findings(result.data) == [] and fixtures.SECRET_NAME.encode() not in result.data


def test_an_item_pointing_past_the_end_is_refused(inputs):
    data = bytearray(inputs["avif_rotated"])
    meta = heif_items.read(bytes(data))
    offset, length = meta.locations[meta.primary].extents[0]
    at = bytes(data).find(struct.pack(">II", offset, length))
    assert at > 0
    data[at + 4 : at + 8] = struct.pack(">I", len(data))  # the length now runs past the file
    with pytest.raises(SanitiseError):
        sanitise(bytes(data), KEEP_LENGTH)


MALFORMED = sorted(p for p in (DATA / "malformed").glob("*.hei[cf]")) if (DATA / "malformed").is_dir() else []


@pytest.mark.parametrize("path", MALFORMED, ids=[p.name for p in MALFORMED])
def test_malformed_heif_is_cleaned_or_refused_with_a_reason(path):
    data = path.read_bytes()
    try:
        result = sanitise(data, KEEP_LENGTH)
    except (MalformedImage, UnsupportedFormat, LengthNotPreserved) as error:
        assert error.reason
        return
    assert len(result.data) == len(data) and sniff(result.data).findings(result.data) == []


# --- a real iPhone photo ------------------------------------------------------------------


@pytest.mark.skipif(not IPHONE.is_file(), reason="the shared corpus (../shared/data) is not present")
def test_iphone_photo_keeps_its_grid_and_length_and_loses_gain_map_and_thumbnail(tmp_path):
    data = IPHONE.read_bytes()
    result = sanitise(data, KEEP_LENGTH)
    assert len(result.data) == len(data) and not result.report.reencoded
    assert {"thumbnail", "auxiliary-images", "exif", "xmp"} <= set(result.report.metadata_removed)
    meta = heif_items.read(result.data)
    assert meta.items[meta.primary].type == b"grid" and not [r for r in meta.refs if r.kind != b"dimg"]
    assert meta.properties_of(meta.primary, b"irot"), "the iPhone's rotation must stay"
    assert np.array_equal(decoded(result.data), decoded(data))
    if exiftool_available():
        _assert_judged_clean(judge_bytes({"iphone": result.data}, tmp_path))
