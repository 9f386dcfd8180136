"""GIF: the lossless block walk (comments, XMP, vendor application extensions and
trailers dropped; frames, timing, transparency and the loop count kept)."""

import io

import pytest
from PIL import Image

import fixtures
from veil.clean.core import sanitise
from veil.clean.errors import MalformedImage, TooLarge
from veil.clean.formats.gif import Gif, iter_blocks
from veil.clean.options import FaceMode, SanitiseOptions

GIF = Gif()
OFF = SanitiseOptions(faces=FaceMode.OFF)


def kinds(data: bytes) -> list[str]:
    return [block.kind for block in iter_blocks(data)]


def test_strip_drops_comments_xmp_vendor_extensions_and_trailer():
    data = fixtures.gif_dirty()
    stripped = GIF.strip(data, keep_icc=True)
    assert GIF.findings(data) and not GIF.findings(stripped.data)
    assert "comment" not in kinds(stripped.data) and "application" not in kinds(stripped.data)
    assert stripped.removed == {"comment", "xmp", "vendor-segment", "trailer"}
    assert b"Jane" not in stripped.data and b"SN-0042" not in stripped.data
    assert fixtures.pixels_equal(data, stripped.data)


def test_animation_keeps_frames_timing_and_loop():
    data = fixtures.gif_animated()
    stripped = GIF.strip(data, keep_icc=True).data
    assert GIF.read_header(stripped).frames == 3
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(stripped)) as after:
        assert after.n_frames == 3 and after.info.get("loop") == before.info.get("loop") == 0
        for index in range(3):
            before.seek(index)
            after.seek(index)
            assert after.info["duration"] == before.info["duration"] == 100 * (index + 1)
            assert after.convert("RGBA").tobytes() == before.convert("RGBA").tobytes()
    assert [b.app_id for b in iter_blocks(stripped) if b.kind == "application"] == [b"NETSCAPE2.0"]


def test_loop_extension_with_extra_payload_is_rebuilt_bare():
    base = fixtures.gif_animated()
    # a NETSCAPE2.0 extension smuggling a second sub-block after the loop count
    smuggled = bytes([0x21, 0xFF, 11]) + b"NETSCAPE2.0" + b"\x03\x01\x00\x00" + b"\x05Jane!" + b"\x00"
    data = fixtures.gif_insert(base, [smuggled])
    stripped = GIF.strip(data, keep_icc=True).data
    assert b"Jane" not in stripped and not GIF.findings(stripped)
    assert GIF.findings(data)


def test_frame_outside_the_screen_counts_for_the_size_limit():
    """The 'decompression bomb extents' trick: a tiny screen, a huge frame."""
    data = bytearray(fixtures.gif_dirty())
    pos = next(block.start for block in iter_blocks(bytes(data)) if block.kind == "image")
    header = GIF.read_header(bytes(data))
    data[pos + 5 : pos + 9] = (60000).to_bytes(2, "little") + (60000).to_bytes(2, "little")
    with pytest.raises((TooLarge, MalformedImage)):
        sanitise(bytes(data), OFF)
    assert header.width == fixtures.WIDTH


@pytest.mark.parametrize("cut", [6, 13, 200, 400])
def test_truncated_gif_is_malformed(cut):
    data = fixtures.gif_dirty()
    with pytest.raises(MalformedImage):
        sanitise(data[:cut], OFF)


def test_masking_a_still_gif_reencodes_without_metadata():
    from sample_faces import astronaut

    buffer = io.BytesIO()
    astronaut().resize((256, 256)).quantize(256).save(buffer, "GIF", comment=b"Jane")
    result = sanitise(buffer.getvalue())
    assert result.report.faces and result.report.reencoded
    assert not GIF.findings(result.data) and b"Jane" not in result.data
