import io

import pytest
from builders import (
    encode,
    exif_block,
    gradient,
    insert_after_soi,
    jpeg_segment,
    xmp_packet,
)
from PIL import Image, ImageCms, ImageOps
from veil.clean.errors import MalformedImage
from veil.clean.formats import jpeg as jpeg_format
from veil.clean.formats.exif import EXIF_APP1_PREFIX, is_minimal_orientation_exif
from veil.clean.formats.icc import neutralise
from veil.clean.formats.jpeg import Jpeg, estimate_quality, iter_segments

JPEG = Jpeg()
DECODING = jpeg_format.SOF_MARKERS | {0xC4, 0xDB, 0xDD, 0xDA}


def markers(data: bytes) -> list[int]:
    return [segment.marker for segment in iter_segments(data)]


def decoding_bytes(data: bytes) -> bytes:
    """Every byte that feeds the decoder: tables, frame, scans."""
    return b"".join(data[s.start : s.end] for s in iter_segments(data) if s.marker in DECODING)


def pixels(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).convert("RGB").tobytes()


@pytest.fixture(scope="module")
def plain() -> bytes:
    return encode(gradient(), "JPEG", quality=85)


@pytest.fixture(scope="module")
def dirty(plain) -> bytes:
    return (
        insert_after_soi(
            plain,
            jpeg_segment(0xE1, EXIF_APP1_PREFIX + exif_block(gps=True)),
            jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet()),
            jpeg_segment(0xE1, b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 40 + xmp_packet()),
            jpeg_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0a\x1c\x02P\x00\x04Jane"),
            jpeg_segment(0xE2, b"MPF\x00MM\x00*"),
            jpeg_segment(0xE2, b"FPXR\x00\x00"),
            jpeg_segment(0xEC, b"Ducky\x00\x01"),
            jpeg_segment(0xFE, b"shot by Jane at 51.5N"),
        )
        + b"trailing secret"
    )


def test_segment_walk_covers_every_byte_up_to_eoi(dirty):
    segments = list(iter_segments(dirty))
    assert segments[0].start == 0 and segments[-1].marker == 0xD9
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))


def test_strip_drops_every_metadata_segment_and_the_trailer(dirty):
    stripped = JPEG.strip(dirty, keep_icc=True)
    assert JPEG.findings(dirty) and not JPEG.findings(stripped.data)
    assert set(markers(stripped.data)) <= DECODING | {0xD8, 0xD9, 0xE0}
    assert stripped.removed >= {"exif", "gps", "xmp", "iptc", "mpf", "flashpix", "vendor-segment", "comment", "trailer"}
    assert b"Jane" not in stripped.data and b"secret" not in stripped.data


def test_strip_copies_the_decoding_bytes_verbatim(dirty, plain):
    stripped = JPEG.strip(dirty, keep_icc=True).data
    assert decoding_bytes(stripped) == decoding_bytes(plain)
    assert pixels(stripped) == pixels(plain)


def test_progressive_and_restart_marker_jpegs_strip_losslessly():
    source = gradient((120, 90))
    for options in ({"progressive": True}, {"restart_marker_blocks": 2}):
        data = insert_after_soi(encode(source, "JPEG", quality=80, **options), jpeg_segment(0xFE, b"note"))
        stripped = JPEG.strip(data, keep_icc=True).data
        assert pixels(stripped) == pixels(data)
        assert not JPEG.findings(stripped)


def test_jfif_thumbnail_is_removed_but_jfif_kept(plain):
    thumbnail = bytes([2, 2]) + bytes(12)  # a 2x2 RGB thumbnail
    jfif = jpeg_segment(0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01" + thumbnail)
    data = plain[:2] + jfif + plain[2 + 18 :]  # replace Pillow's own JFIF header
    stripped = JPEG.strip(data, keep_icc=True)
    assert "thumbnail" in stripped.removed
    app0 = [s for s in iter_segments(stripped.data) if s.marker == 0xE0]
    assert len(app0) == 1 and bytes(app0[0].payload) == b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"


def test_icc_is_kept_by_default_and_dropped_on_request():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient(), "JPEG", icc_profile=icc)
    assert Image.open(io.BytesIO(JPEG.strip(data, keep_icc=True).data)).info["icc_profile"] == neutralise(icc)
    dropped = JPEG.strip(data, keep_icc=False)
    assert "icc" in dropped.removed and "icc_profile" not in Image.open(io.BytesIO(dropped.data)).info


@pytest.mark.parametrize("orientation", range(2, 9))
def test_orientation_survives_as_a_minimal_exif(orientation):
    stored = gradient().transpose(Image.Transpose.ROTATE_90)
    data = insert_after_soi(encode(stored, "JPEG"), jpeg_segment(0xE1, EXIF_APP1_PREFIX + exif_block(orientation, gps=True)))
    stripped = JPEG.strip(data, keep_icc=True)
    assert stripped.orientation == orientation
    app1 = [bytes(s.payload) for s in iter_segments(stripped.data) if s.marker == 0xE1]
    assert len(app1) == 1 and is_minimal_orientation_exif(app1[0])
    assert Image.open(io.BytesIO(stripped.data)).getexif() == {0x0112: orientation}
    assert pixels(stripped.data) == pixels(data)


def test_xmp_orientation_is_kept_when_exif_has_none(plain):
    data = insert_after_soi(plain, jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(6, as_element=True)))
    stripped = JPEG.strip(data, keep_icc=True)
    assert stripped.orientation == 6 and Image.open(io.BytesIO(stripped.data)).getexif()[0x0112] == 6


def test_junk_between_segments_is_skipped_not_copied(plain):
    data = plain[:20] + b"JUNK-with-a-name" + plain[20:]  # after Pillow's 18-byte JFIF header
    stripped = JPEG.strip(data, keep_icc=True)
    assert "junk-bytes" in stripped.removed and b"JUNK" not in stripped.data
    assert pixels(stripped.data) == pixels(plain)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[: len(d) // 2],  # scan data without an end
        lambda d: d[:-2],  # no EOI
        lambda d: d[:20],  # inside a segment
        lambda d: d[:4] + b"\xff\xff" + d[6:],  # a length running past the end
        lambda d: b"\xff\xd8\xff",
    ],
    ids=["half", "no-eoi", "cut-in-segment", "huge-length", "soi-only"],
)
def test_broken_structure_is_a_malformed_image(plain, damage):
    with pytest.raises(MalformedImage):
        JPEG.strip(damage(plain), keep_icc=True)


def test_header_is_read_without_decoding(plain):
    header = JPEG.read_header(plain)
    assert (header.width, header.height) == (48, 32)
    zero_height = plain.replace(b"\xff\xc0\x00\x11\x08\x00\x20", b"\xff\xc0\x00\x11\x08\x00\x00")
    with pytest.raises(MalformedImage):
        JPEG.read_header(zero_height)


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95])
def test_quality_estimate_matches_the_encoder(quality):
    data = encode(gradient(), "JPEG", quality=quality)
    tables = Image.open(io.BytesIO(data)).quantization
    assert abs(estimate_quality(list(tables[0])) - quality) <= 1


def test_reencode_keeps_the_source_tables_and_writes_no_metadata(dirty):
    stripped = JPEG.strip(dirty, keep_icc=True).data
    out = JPEG.encode(gradient(), stripped, icc=None)
    assert Image.open(io.BytesIO(out)).quantization == Image.open(io.BytesIO(stripped)).quantization
    assert not JPEG.findings(out)
