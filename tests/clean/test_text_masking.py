"""Text masking end to end through `sanitise`: rendered screenshots, ID cards, photographed
letters and plates with known boxes, judged by pixels and by an independent reader (Tesseract)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

import text_samples as samples
from veil.clean.core import sanitise
from veil.clean.errors import VerificationFailed
from veil.clean.options import FaceMode, SanitiseOptions, TextMode

PII = SanitiseOptions(faces=FaceMode.OFF, text=TextMode.PII)
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (scripts/install-system-deps)")


def cleaned(sample: samples.Sample, options: SanitiseOptions = PII):
    result = sanitise(sample.png(), options)
    return result, Image.open(io.BytesIO(result.data)).convert("RGB")


@pytest.fixture(scope="module")
def screenshot():
    sample = samples.screenshot(11)
    return (sample, *cleaned(sample))


@pytest.fixture(scope="module")
def id_card():
    sample = samples.id_card(12)
    return (sample, *cleaned(sample))


def compact(text: str) -> str:
    return re.sub(r"[^0-9a-z@]", "", text.lower())


def tesseract(image: Image.Image) -> str:
    import pytesseract

    return compact(pytesseract.image_to_string(image))


def assert_masked_by_pixels(sample, output, kept_share=0.9):
    verdict = samples.judge(sample, output)
    assert verdict.missed == [], f"personal tokens left readable: {verdict.missed}"
    assert verdict.codes_covered == verdict.codes_total
    assert verdict.others_kept >= kept_share * verdict.others_total, verdict


def test_a_screenshot_loses_its_addresses_phone_iban_and_qr_code_and_keeps_its_words(screenshot):
    sample, result, output = screenshot
    assert_masked_by_pixels(sample, output)
    report = result.report
    assert report.text_mode == "pii"
    assert report.text == {"email": 2, "phone": 1, "iban": 1, "code": 1}
    assert report.verification["text"].startswith("nothing readable")


@needs_tesseract
def test_tesseract_reads_the_personal_strings_before_and_none_after(screenshot):
    sample, _, output = screenshot
    personal = [compact(token.text) for token in sample.personal]
    before = tesseract(sample.image.resize((sample.image.width * 2, sample.image.height * 2)))
    assert any(value in before for value in personal), "the judge must be able to read them at all"
    after = tesseract(output.resize((output.width * 2, output.height * 2)))
    assert [value for value in personal if value in after] == []
    kept = [compact(token.text) for token in sample.other_words if len(token.text) > 5]
    assert sum(word in after for word in kept) >= 0.8 * sum(word in before for word in kept)


def test_the_report_counts_kinds_and_never_holds_the_text(screenshot):
    sample, result, _ = screenshot
    facts = json.dumps(result.report.to_dict())
    assert all(token.text not in facts for token in sample.personal)


def test_an_id_card_loses_names_birth_date_number_and_both_mrz_lines(id_card):
    sample, result, output = id_card
    assert_masked_by_pixels(sample, output)
    assert result.report.text == {"name": 2, "birth_date": 1, "national_id": 1, "mrz": 2}


def test_a_letter_photographed_upside_down_is_read_turned_and_masked():
    sample = samples.photographed(samples.letter(13), 13, turn=180)
    result, output = cleaned(sample)
    assert_masked_by_pixels(sample, output)
    assert result.report.text["code"] == 1


def test_a_number_plate():
    sample = samples.plate(14)
    result, output = cleaned(sample)
    assert_masked_by_pixels(sample, output)
    assert result.report.text == {"plate": 1}


def test_all_covers_every_word():
    sample = samples.id_card(15)
    _, output = cleaned(sample, SanitiseOptions(faces=FaceMode.OFF, text=TextMode.ALL))
    verdict = samples.judge(samples.Sample(sample.name, sample.image, [samples.Token(t.text, t.box, "text") for t in sample.tokens]), output)
    assert verdict.missed == []


def test_a_picture_without_text_keeps_its_bytes():
    picture = Image.new("RGB", (640, 480), (30, 120, 200))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    result = sanitise(buffer.getvalue(), PII)
    assert result.report.text == {} and not result.report.reencoded
    assert result.report.verification["text"] == "no personal text or code found"


def test_a_mask_that_leaves_the_text_readable_is_refused(monkeypatch):
    import veil.clean.text as text

    monkeypatch.setattr(text, "cover", lambda picture, rects: picture.copy())  # a cover that covers nothing
    with pytest.raises(VerificationFailed, match="text is still readable"):
        sanitise(samples.screenshot(16).png(), PII)


def test_text_off_never_imports_the_ocr_stack():
    script = (
        "import sys, io\n"
        "from PIL import Image\n"
        "from veil.clean.core import sanitise\n"
        "from veil.clean.options import SanitiseOptions, FaceMode\n"
        "b = io.BytesIO(); Image.new('RGB', (64, 64)).save(b, 'PNG')\n"
        "sanitise(b.getvalue(), SanitiseOptions(faces=FaceMode.OFF))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rapidocr', 'zxingcpp', 'phonenumbers', 'stdnum') or m.startswith('veil.clean.text')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_veil_scrub_text_pii_on_a_file(tmp_path):
    sample = samples.id_card(17)
    source, target = tmp_path / "card.png", tmp_path / "clean.png"
    source.write_bytes(sample.png())
    done = subprocess.run(
        [sys.executable, "-m", "veil.cli", "scrub", str(source), str(target), "--text", "pii", "--faces", "off", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["text_mode"] == "pii" and report["text"]["mrz"] == 2
    assert_masked_by_pixels(sample, Image.open(target).convert("RGB"))


def test_every_frame_of_an_animation_is_masked_and_read_again():
    card = samples.id_card(18)
    blank = Image.new("RGB", card.image.size, (200, 200, 200))
    buffer = io.BytesIO()
    card.image.save(buffer, "GIF", save_all=True, append_images=[blank, card.image], duration=200, loop=0)
    result = sanitise(buffer.getvalue(), PII)
    assert result.report.text == {"name": 4, "birth_date": 2, "national_id": 2, "mrz": 4}
    assert result.report.verification["text"].startswith("nothing readable")
    animation = Image.open(io.BytesIO(result.data))
    for index in (0, 2):
        animation.seek(index)
        verdict = samples.judge(card, animation.convert("RGB"))
        assert verdict.missed == [], (index, verdict.missed)
