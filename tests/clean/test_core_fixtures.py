"""`veil.clean.core.sanitise` over every dirty fixture from fixtures.py.

Each fixture is sanitised once per module (faces OFF, then default options), every
output is judged by ONE exiftool run (exiftool_judge), and the tests below read those
shared results: clean output, same pixels once each side's orientation is honoured,
the report tells the truth (categories, hashes, sizes, orientation), a second pass
changes nothing, ICC kept or dropped on request, size limits before any decode, and
broken input fails with a SanitiseError subclass, never anything else.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import time
from dataclasses import dataclass

import fixtures
import pytest
from exiftool_judge import judge_bytes
from fixtures import ALL_DIRTY, FACTS
from PIL import Image, ImageFile
from veil.clean.core import sanitise
from veil.clean.errors import MalformedImage, SanitiseError, TooLarge, UnsupportedFormat
from veil.clean.formats import icc
from veil.clean.options import FaceMode, SanitiseOptions

OFF = SanitiseOptions(faces=FaceMode.OFF)
OFF_NO_ICC = SanitiseOptions(faces=FaceMode.OFF, keep_icc=False)
NAMES = list(ALL_DIRTY)
ICC_NAMES = [name for name in NAMES if FACTS[name].has_icc]


@dataclass
class Outcome:
    data: bytes
    result: object | None = None
    error: BaseException | None = None

    def output(self) -> bytes:
        if self.error is not None:
            pytest.fail(f"sanitise raised {type(self.error).__name__}: {self.error}")
        return self.result.data

    @property
    def report(self):
        self.output()
        return self.result.report


def run(data: bytes, options: SanitiseOptions | None) -> Outcome:
    try:
        return Outcome(data, sanitise(data, options))
    except Exception as error:  # recorded; each test reports it against its own fixture
        return Outcome(data, error=error)


def _sanitise_all(options: SanitiseOptions | None) -> dict[str, Outcome]:
    return {name: run(build(), options) for name, build in ALL_DIRTY.items()}


def _judge(outcomes: dict[str, Outcome], directory):
    outputs = {name: o.result.data for name, o in outcomes.items() if o.error is None}
    return judge_bytes(outputs, directory)


@pytest.fixture(scope="module")
def stripped() -> dict[str, Outcome]:
    return _sanitise_all(OFF)


@pytest.fixture(scope="module")
def stripped_verdicts(stripped, tmp_path_factory):
    return _judge(stripped, tmp_path_factory.mktemp("stripped"))


@pytest.fixture(scope="module")
def masked() -> dict[str, Outcome]:
    return _sanitise_all(None)  # default options: faces MASK


@pytest.fixture(scope="module")
def masked_verdicts(masked, tmp_path_factory):
    return _judge(masked, tmp_path_factory.mktemp("masked"))


@pytest.fixture(scope="module")
def no_icc() -> dict[str, Outcome]:
    return {name: run(ALL_DIRTY[name](), OFF_NO_ICC) for name in NAMES}


@pytest.fixture(scope="module")
def no_icc_verdicts(no_icc, tmp_path_factory):
    return _judge(no_icc, tmp_path_factory.mktemp("no_icc"))


def _stored(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _orientation(data: bytes) -> int:
    return _stored(data).getexif().get(0x0112) or 1


# --- faces OFF: the lossless strip -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_output_is_clean(stripped, stripped_verdicts, name):
    stripped[name].output()
    verdict = stripped_verdicts[name]
    assert verdict.clean, verdict.explain()


@pytest.mark.parametrize("name", NAMES)
def test_output_has_same_pixels_once_upright(stripped, name):
    outcome = stripped[name]
    output = outcome.output()
    before, after = _stored(outcome.data), _stored(output)
    assert fixtures.upright_reference(output).size == fixtures.upright_reference(outcome.data).size
    if _orientation(output) == _orientation(outcome.data):
        assert after.size == before.size, "orientation kept, so the stored size must be the same"
    else:
        assert _orientation(output) == 1, f"output orientation {_orientation(output)} for input {_orientation(outcome.data)}"
    assert after.mode == before.mode, f"mode changed {before.mode} -> {after.mode}"
    if not fixtures.pixels_equal(outcome.data, output):
        mean, peak = fixtures.pixel_difference(outcome.data, output)
        pytest.fail(f"{name}: upright pixels differ (mean {mean:.2f}, max {peak}); report: {outcome.report.to_dict()}")


@pytest.mark.parametrize("name", NAMES)
def test_report_lists_what_was_removed(stripped, name):
    removed = set(stripped[name].report.metadata_removed)
    for expected in FACTS[name].removes:
        options = (expected,) if isinstance(expected, str) else expected
        assert removed & set(options), f"{name}: none of {options} in metadata_removed {sorted(removed)}"
    assert "icc" not in removed, "ICC must be kept by default"


@pytest.mark.parametrize("name", NAMES)
def test_report_facts_match_the_bytes(stripped, name):
    outcome = stripped[name]
    output, report = outcome.output(), outcome.report
    facts = FACTS[name]
    assert report.format == facts.format
    assert report.bytes_before == len(outcome.data)
    assert report.bytes_after == len(output)
    assert report.sha256_before == hashlib.sha256(outcome.data).hexdigest()
    assert report.sha256_after == hashlib.sha256(output).hexdigest()
    stored = _stored(outcome.data).size
    upright = fixtures.upright_reference(outcome.data).size
    assert (report.width, report.height) in (stored, upright)
    assert report.orientation == facts.orientation
    assert report.metadata_removed == sorted(report.metadata_removed)
    assert report.face_mode in ("off", FaceMode.OFF)
    assert report.faces == []
    assert report.reencoded is False, "faces OFF must not re-encode (lossless strip)"
    assert isinstance(report.timings_ms, dict)
    assert report.verification.get("metadata") == "clean"
    json.dumps(report.to_dict())  # the audit log must be able to write it


@pytest.mark.parametrize("name", NAMES)
def test_second_pass_changes_nothing(stripped, name):
    """Idempotent: the second pass gives the same bytes, or at least removes nothing
    and keeps the pixels and the orientation."""
    first = stripped[name].output()
    second = sanitise(first, OFF)
    if second.data == first:
        return
    assert second.report.metadata_removed == [], f"second pass still removed {second.report.metadata_removed}"
    assert fixtures.pixels_equal(first, second.data)
    assert _orientation(second.data) == _orientation(first)


def test_sixteen_bit_png_keeps_its_depth(stripped):
    output = stripped["png_16bit"].output()
    assert output[:8] == fixtures.PNG_SIGNATURE and output[12:16] == b"IHDR"
    assert output[24] == 16, f"bit depth {output[24]}: 16-bit samples were reduced"


def test_input_bytes_are_not_modified():
    for name, build in ALL_DIRTY.items():
        data = build()
        copy = bytes(bytearray(data))
        sanitise(data, OFF)
        assert data == copy, name
        mutable = bytearray(data)
        try:
            sanitise(mutable, OFF)  # type: ignore[arg-type]
        except (SanitiseError, TypeError):
            pass
        assert bytes(mutable) == copy, f"{name}: a bytearray input was modified in place"


# --- ICC profiles ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ICC_NAMES)
def test_icc_kept_by_default(stripped, name):
    outcome = stripped[name]
    before = _stored(outcome.data).info.get("icc_profile")
    assert before, "fixture should carry an ICC profile"
    # The colours are kept; the profile's text tags are neutral (a profile can name a person).
    assert _stored(outcome.output()).info.get("icc_profile") == icc.neutralise(before)


@pytest.mark.parametrize("name", NAMES)
def test_icc_dropped_on_request(no_icc, no_icc_verdicts, name):
    outcome = no_icc[name]
    output = outcome.output()
    assert not _stored(output).info.get("icc_profile")
    assert not any(tag.startswith("ICC") for tag in no_icc_verdicts[name].tags), "exiftool still sees an ICC profile"
    assert no_icc_verdicts[name].clean, no_icc_verdicts[name].explain()
    removed = outcome.report.metadata_removed
    if FACTS[name].has_icc:
        assert "icc" in removed, removed
    else:
        assert "icc" not in removed, f"{name} had no ICC profile but the report says it removed one"
    assert fixtures.pixels_equal(outcome.data, output)


# --- default options (faces MASK): still clean, still upright ---------------------------


@pytest.mark.parametrize("name", NAMES)
def test_default_options_output_is_clean_and_upright(masked, masked_verdicts, name):
    outcome = masked[name]
    output = outcome.output()
    assert outcome.report.face_mode == "mask"
    assert "faces" in outcome.report.verification
    assert masked_verdicts[name].clean, masked_verdicts[name].explain()
    assert fixtures.upright_reference(output).size == fixtures.upright_reference(outcome.data).size
    mean, _ = fixtures.pixel_difference(outcome.data, output)
    assert mean < 6, f"{name}: output differs from the input (mean {mean:.1f}); faces found: {outcome.report.faces}"


# --- size limits -----------------------------------------------------------------------


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decode (ImageFile.load) during the test is a failure."""
    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(self.size)
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: fixtures.png_claiming(100_000, 100_000), id="png-100000x100000"),
        pytest.param(lambda: fixtures.jpeg_claiming(60_000, 60_000), id="jpeg-60000x60000"),
        pytest.param(lambda: fixtures.webp_claiming(16_383, 16_383), id="webp-16383x16383"),
    ],
)
def test_huge_header_is_too_large_before_decoding(build, no_decoding):
    data = build()
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        sanitise(data)
    assert time.monotonic() - started < 2
    assert not no_decoding, f"decoded pixels before refusing: {no_decoding}"
    assert caught.value.kind == "too_large" and caught.value.reason


def test_no_decoding_guard_bites(no_decoding):
    """The guard above really notices a decode (faces MASK has to decode)."""
    with pytest.raises(SanitiseError):
        sanitise(ALL_DIRTY["jpeg_exif"]())
    assert no_decoding


@pytest.mark.parametrize("name", ["jpeg_exif", "png_dirty", "webp_lossy"])
def test_max_pixels_option(name, no_decoding):
    data = ALL_DIRTY[name]()
    pixels = fixtures.WIDTH * fixtures.HEIGHT
    with pytest.raises(TooLarge):
        sanitise(data, SanitiseOptions(faces=FaceMode.OFF, max_pixels=pixels - 1))
    assert not no_decoding


@pytest.mark.parametrize("name", ["jpeg_exif", "png_dirty", "webp_lossy"])
def test_max_pixels_at_the_limit_passes(name):
    sanitise(ALL_DIRTY[name](), SanitiseOptions(faces=FaceMode.OFF, max_pixels=fixtures.WIDTH * fixtures.HEIGHT))


# --- broken input: SanitiseError subclasses only ------------------------------------------


def _pixel_data_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the compressed pixel data: JPEG first SOS..EOI, PNG first IDAT, WebP VP8/VP8L."""
    if data[:2] == fixtures.SOI:
        _, sos = fixtures.jpeg_header_segments(data)
        return sos, data.index(fixtures.EOI, sos)
    if data[:8] == fixtures.PNG_SIGNATURE:
        start = data.index(b"IDAT") + 4
        (length,) = struct.unpack(">I", data[start - 8 : start - 4])
        return start, start + length
    start = max(data.find(b"VP8 "), data.find(b"VP8L")) + 8
    (length,) = struct.unpack("<I", data[start - 4 : start])
    return start, start + length


def _broken_inputs() -> dict[str, bytes]:
    rng = random.Random(1234)
    cases = {
        "empty": b"",
        "one-byte": b"\xff",
        "zeros": b"\x00" * 512,
        "random": bytes(rng.randrange(256) for _ in range(4096)),
        "text": b"this is not an image\n" * 20,
        "gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "jpeg-soi-only": b"\xff\xd8",
        "jpeg-magic-then-garbage": b"\xff\xd8\xff" + bytes(rng.randrange(256) for _ in range(2048)),
        "png-signature-only": fixtures.PNG_SIGNATURE,
        "png-magic-then-garbage": fixtures.PNG_SIGNATURE + bytes(rng.randrange(256) for _ in range(2048)),
        "riff-webp-header-only": b"RIFF\x04\x00\x00\x00WEBP",
        "webp-magic-then-garbage": b"RIFF\x00\x10\x00\x00WEBP" + bytes(rng.randrange(256) for _ in range(2048)),
    }
    base_jpeg = fixtures.jpeg_exif()
    cases["jpeg-segment-length-past-end"] = base_jpeg[:2] + b"\xff\xe1\xff\xf0" + base_jpeg[6:200]
    png = fixtures.png_palette_trns()
    cases["png-chunk-length-huge"] = png[:8] + b"\x7f\xff\xff\xff" + png[12:]
    cases["png-bad-ihdr-crc"] = png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]
    webp = fixtures.webp_lossy()
    cases["webp-riff-size-huge"] = webp[:4] + b"\xff\xff\xff\x7f" + webp[8:]
    for name in ["jpeg_exif", "jpeg_progressive", "jpeg_cmyk", "jpeg_grayscale", "png_dirty", "png_16bit", "webp_lossy", "webp_lossless", "webp_alpha"]:
        data = ALL_DIRTY[name]()
        start, end = _pixel_data_span(data)
        cases[f"{name}-cut-at-20-bytes"] = data[:20]
        cases[f"{name}-cut-in-pixel-data"] = data[: (start + end) // 2]
    return cases


BROKEN = _broken_inputs()


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_input_raises_malformed_or_unsupported(case):
    data = BROKEN[case]
    started = time.monotonic()
    try:
        result = sanitise(data, OFF)
    except (MalformedImage, UnsupportedFormat) as error:
        assert error.reason and isinstance(error.reason, str)
        assert error.kind in ("malformed", "unsupported")
    except Exception as error:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{case}: raised {type(error).__name__}: {error}")
    else:
        pytest.fail(f"{case}: returned {len(result.data)} bytes instead of refusing; report {result.report.to_dict()}")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("case", ["random", "jpeg_exif-cut-in-pixel-data", "png_dirty-cut-in-pixel-data", "webp_lossy-cut-in-pixel-data"])
def test_broken_input_with_faces_on_raises_sanitise_error(case):
    with pytest.raises(SanitiseError):
        sanitise(BROKEN[case])
