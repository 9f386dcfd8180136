"""TIFF cleaned in place: directories cut to the decoding tags, everything else zeroed,
offsets and length unchanged, pixels identical; a declared length holds."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import fixtures
from exiftool_judge import exiftool_available, judge_bytes
from veil.clean import verify
from veil.clean.core import sanitise
from veil.clean.errors import LengthNotPreserved, VerificationFailed
from veil.clean.formats import icc, sniff
from veil.clean.formats.tiff import DECODE_TAGS, Tiff, iter_ifds
from veil.clean.options import FaceMode, SanitiseOptions

OFF = SanitiseOptions(faces=FaceMode.OFF)
KEEP_LENGTH = SanitiseOptions(faces=FaceMode.OFF, preserve_length=True)
SECRETS = (fixtures.SECRET_NAME.encode(), fixtures.SECRET_SERIAL.encode(), b"VeilCam", b"Brighton")


def pages(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        found = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            image.load()
            found.append(np.asarray(image).copy())
        return found


@pytest.mark.parametrize("build", [fixtures.tiff_dirty, fixtures.tiff_multipage], ids=["dirty", "multipage"])
def test_cleaned_in_place_with_identical_pages_and_length(build):
    original = build()
    result = sanitise(original, KEEP_LENGTH)
    assert len(result.data) == len(original) and result.report.padding == 0 and not result.report.reencoded
    assert all(np.array_equal(a, b) for a, b in zip(pages(result.data), pages(original), strict=True))
    assert not [secret for secret in SECRETS if secret in result.data]
    assert [offset for offset, _ in iter_ifds(result.data)] == [offset for offset, _ in iter_ifds(original)]
    assert all(set(entries) <= DECODE_TAGS for _, entries in iter_ifds(result.data))
    assert Tiff().findings(result.data) == [] and Tiff().findings(original)


def test_orientation_and_neutral_profile_stay():
    result = sanitise(fixtures.tiff_dirty(orientation=6), OFF)
    assert result.report.orientation == 6
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.tag_v2.get(0x0112) == 6
        profile = image.info["icc_profile"]
    assert icc.is_neutral(profile) and len(profile) == len(fixtures.icc_profile())


def test_profile_dropped_on_request_is_zeroed():
    result = sanitise(fixtures.tiff_dirty(), SanitiseOptions(faces=FaceMode.OFF, keep_icc=False))
    assert "icc" in result.report.metadata_removed and fixtures.icc_profile()[40:120] not in result.data
    with Image.open(io.BytesIO(result.data)) as image:
        assert not image.info.get("icc_profile")


@pytest.mark.skipif(not exiftool_available(), reason="exiftool is not installed")
def test_exiftool_finds_nothing(tmp_path):
    outputs = {name: sanitise(build(), KEEP_LENGTH).data for name, build in (("dirty", fixtures.tiff_dirty), ("multipage", fixtures.tiff_multipage))}
    for name, verdict in judge_bytes(outputs, tmp_path).items():
        assert verdict.clean, verdict.explain()
        tags = [tag for tag in verdict.tags if not tag.startswith("ICC")]  # a profile's DeviceModel is colour data
        assert not any(word in tag for tag in tags for word in ("GPS", "Make", "Model", "Serial", "Owner", "Artist", "XMP")), name


@pytest.mark.parametrize("gap", [1, 7, 1000])
def test_padding_is_zeros_after_the_last_structure(gap):
    clean = sanitise(fixtures.tiff_dirty(), OFF).data
    padded = Tiff().pad_to(clean, len(clean) + gap)
    assert len(padded) == len(clean) + gap and Tiff().findings(padded) == []
    verify.verify_output(sniff(padded), padded, 6, [], OFF)
    with pytest.raises(LengthNotPreserved):
        Tiff().pad_to(clean, len(clean) - 1)


def test_text_where_no_directory_points_is_found():
    original = fixtures.tiff_dirty()
    clean = sanitise(original, OFF).data
    for dirty in (clean + b"Jane", _write_where_the_artist_was(original, clean)):
        assert any("not zero" in finding for finding in Tiff().findings(dirty))
        with pytest.raises(VerificationFailed):
            verify.verify_output(sniff(dirty), dirty, 6, [], OFF)


def _write_where_the_artist_was(original: bytes, clean: bytes) -> bytes:
    """The owner's name put back in the middle of the file, where the strip zeroed it."""
    at = original.find(fixtures.SECRET_NAME.encode())
    assert at > 0 and not any(clean[at : at + 4])
    return clean[:at] + b"Jane" + clean[at + 4 :]


def test_jpeg_compressed_tiff_is_re_encoded_losslessly():
    buffer = io.BytesIO()
    fixtures.picture((64, 48)).save(buffer, "TIFF", compression="jpeg", description=fixtures.SECRET_NAME)
    result = sanitise(buffer.getvalue(), OFF)
    assert result.report.reencoded and fixtures.SECRET_NAME.encode() not in result.data
    assert Tiff().findings(result.data) == []


def test_strips_without_byte_counts_are_re_encoded():
    buffer = io.BytesIO()
    fixtures.picture((16, 12)).save(buffer, "TIFF", description=fixtures.SECRET_NAME)
    data = bytearray(buffer.getvalue())
    offset, entries = iter_ifds(bytes(data))[0]
    _, _, field = entries[279]
    struct.pack_into("<H", data, field - 8, 0xFDE8)  # StripByteCounts becomes a private tag 65000
    result = sanitise(bytes(data), OFF)  # the strip cannot be located from kept tags: Pillow decodes it
    assert result.report.reencoded and fixtures.SECRET_NAME.encode() not in result.data
    assert Tiff().findings(result.data) == []


def test_a_kept_tag_whose_count_was_raised_cannot_keep_other_tags_text():
    """Found by tests/fuzz: ImageWidth given 127 values pointed at the Artist and Software
    strings, and the in-place clean kept the bytes a kept tag pointed at."""
    from builders import encode, gradient

    data = bytearray(encode(gradient(), "TIFF", tiffinfo={315: "Jane Veil-Tester", 305: "VeilFixtureWriter"}))
    order = "<" if data[:2] == b"II" else ">"
    offset, entries = iter_ifds(bytes(data))[0]
    count_field = entries[256][2] - 4  # the count sits just before the value field
    struct.pack_into(order + "I", data, count_field, 127)
    from veil.clean.errors import SanitiseError

    assert b"Jane Veil-Tester" in data
    try:
        result = sanitise(bytes(data), SanitiseOptions(faces=FaceMode.OFF))
    except SanitiseError:
        return  # not cleaned in place, and the re-encode cannot decode it either: refused, nothing leaves
    assert b"Jane Veil-Tester" not in result.data and b"VeilFixtureWriter" not in result.data
