import io

import pytest
from PIL import Image

from builders import encode, exif_block, gradient, xmp_packet
from veil.clean.formats import exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_minimal_block_is_read_by_pillow_as_that_orientation_and_nothing_else(orientation):
    block = exif.minimal_orientation_exif(orientation)
    data = encode(gradient(), "JPEG", exif=exif.EXIF_APP1_PREFIX + block)
    assert dict(Image.open(io.BytesIO(data)).getexif()) == {0x0112: orientation}
    assert exif.is_minimal_orientation_exif(block)
    assert exif.orientation_from_exif(block) == orientation


def test_a_richer_block_is_not_minimal():
    assert not exif.is_minimal_orientation_exif(exif_block(6))
    assert not exif.is_minimal_orientation_exif(exif_block(6, gps=True))
    assert not exif.is_minimal_orientation_exif(exif.minimal_orientation_exif(6) + b"extra")


def test_categories_name_what_the_block_held():
    assert exif.exif_categories(exif_block(gps=True)) == {"exif", "camera", "gps"}


@pytest.mark.parametrize(
    "block",
    [b"", b"MM", b"MM\x00*", b"MM\x00*\x00\x00\xff\xff", b"II*\x00\x08\x00\x00\x00\xff\xff", b"junk" * 10],
)
def test_hostile_blocks_give_no_orientation_and_no_exception(block):
    assert exif.orientation_from_exif(block) is None
    assert not exif.is_minimal_orientation_exif(block)
    assert "exif" in exif.exif_categories(block)


def test_xmp_orientation_as_attribute_or_element():
    assert exif.orientation_from_xmp(xmp_packet(8)) == 8
    assert exif.orientation_from_xmp(xmp_packet(5, as_element=True)) == 5
    assert exif.orientation_from_xmp(xmp_packet()) is None
