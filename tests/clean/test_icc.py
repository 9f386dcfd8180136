"""ICC profiles keep their colours and lose their words: a profile made on someone's own
machine can name them in its description or copyright (found by an outside test)."""

import io

import pytest
from builders import encode, exif_block, gradient, personal_icc_profile
from exiftool_judge import exiftool_available, run_exiftool
from PIL import Image, ImageCms
from veil.clean.options import FaceMode, SanitiseOptions
from veil.clean.core import sanitise
from veil.clean.errors import VerificationFailed
from veil.clean.formats import icc

PROFILE = personal_icc_profile()
NAME_BITS = (b"Jane", "Jane".encode("utf-16-be"), b"Rose Street", "Rose".encode("utf-16-be"))


def holds_the_name(data: bytes) -> bool:
    return any(bit in data for bit in NAME_BITS)


def profile_of(data: bytes) -> bytes | None:
    return Image.open(io.BytesIO(data)).info.get("icc_profile")


def test_the_fixture_profile_is_a_working_profile_that_names_a_person():
    assert holds_the_name(PROFILE)
    ImageCms.ImageCmsProfile(io.BytesIO(PROFILE))  # LittleCMS accepts it


def test_neutralise_keeps_length_and_colour_tags_and_drops_every_name():
    neutral = icc.neutralise(PROFILE)
    assert len(neutral) == len(PROFILE) and not holds_the_name(neutral)
    assert icc.is_neutral(neutral) and not icc.is_neutral(PROFILE)
    assert neutral[84:100] == bytes(16)  # the profile ID no longer hashes the original
    ImageCms.ImageCmsProfile(io.BytesIO(neutral))  # still a profile LittleCMS reads
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(neutral)), ImageCms.createProfile("sRGB"), "RGB", "RGB")
    assert ImageCms.applyTransform(gradient(), transform).getpixel((5, 5)) == pytest.approx(gradient().getpixel((5, 5)), abs=2)


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("faces", [FaceMode.OFF, FaceMode.MASK])
def test_a_cleaned_image_keeps_a_profile_without_the_name(kind, faces, tmp_path):
    data = encode(gradient(), kind, icc_profile=PROFILE, exif=exif_block(gps=True))
    assert holds_the_name(profile_of(data))
    result = sanitise(data, SanitiseOptions(faces=faces))
    kept = profile_of(result.data)
    assert kept and icc.is_neutral(kept) and not holds_the_name(kept) and not holds_the_name(result.data)
    if exiftool_available():  # an independent reader finds no name either
        before, after = tmp_path / f"before.{kind.lower()}", tmp_path / f"after.{kind.lower()}"
        before.write_bytes(data)
        after.write_bytes(result.data)
        seen = run_exiftool([before, after])
        assert "Jane" in str(seen[before])  # the judge can see it where it is
        assert "Jane" not in str(seen[after]) and "Rose Street" not in str(seen[after])


def test_a_jpeg_profile_split_over_several_segments_is_neutralised_in_place():
    big = personal_icc_profile() + bytes(140_000)  # past one APP2 segment's 64 KB
    big = len(big).to_bytes(4, "big") + big[4:]
    data = encode(gradient(), "JPEG", icc_profile=big)
    result = sanitise(data, SanitiseOptions(faces=FaceMode.OFF, preserve_length=True))
    assert len(result.data) == len(data) and not holds_the_name(result.data)


def test_verification_refuses_a_profile_that_still_holds_text(monkeypatch):
    monkeypatch.setattr(icc, "_neutral_body", lambda kind, body: body)  # a cleaner that forgot the text
    data = encode(gradient(), "PNG", icc_profile=PROFILE)
    with pytest.raises(VerificationFailed, match="colour profile"):
        sanitise(data, SanitiseOptions(faces=FaceMode.OFF))
