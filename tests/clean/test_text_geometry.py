"""Where masks go: turned pictures back to upright pixels, character spans to boxes, codes
with their quiet zone (no OCR needed)."""

import pytest
from PIL import Image, ImageDraw

from veil.clean.options import TextDetectionSettings
from veil.clean.text import codes
from veil.clean.text.masks import cover, span_rect
from veil.clean.text.ocr import Line, Word
from veil.clean.text.scan import unturn_rect


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_a_rectangle_found_on_a_turned_picture_lands_on_the_same_upright_pixels(turn):
    upright = Image.new("L", (300, 200), 0)
    rect = (40, 30, 110, 60)
    ImageDraw.Draw(upright).rectangle((rect[0], rect[1], rect[2] - 1, rect[3] - 1), fill=255)
    turned = upright.rotate(turn, expand=True)
    assert unturn_rect(turned.getbbox(), turn, upright.size) == rect


def test_a_span_is_boxed_by_its_words_plus_the_margin():
    words = (Word("Mail:", (10, 10, 50, 30)), Word("ann@example.org", (56, 10, 176, 30)), Word("today", (182, 10, 222, 30)))
    line = Line("Mail: ann@example.org today", 0.99, (8, 8, 224, 32), words)
    start = line.text.index("ann")
    settings = TextDetectionSettings(mask_margin=0.25, mask_min_margin_px=3)
    x0, y0, x1, y1 = span_rect(line, start, start + len("ann@example.org"), settings, (400, 100))
    assert (x0, x1) == (56 - 6, 176 + 6)  # a quarter of the 24 px line sideways
    assert (y0, y1) == (8 - 3, 32 + 3)  # an eighth up and down
    assert x0 >= 50 and x1 <= 182  # the neighbouring words keep their pixels (x1 is exclusive)


def test_a_span_inside_a_word_is_placed_proportionally():
    line = Line("DOB:12.03.1985", 0.99, (0, 0, 140, 20), (Word("DOB:12.03.1985", (0, 0, 140, 20)),))
    rect = span_rect(line, 4, 14, TextDetectionSettings(mask_margin=0, mask_min_margin_px=0), (200, 50))
    assert rect == (40, 0, 140, 20)


@pytest.mark.parametrize("box, linear", [((100, 100, 160, 160), False), ((100, 100, 400, 130), True), ((100, 100, 130, 400), True)])
def test_codes_are_masked_with_their_quiet_zone_and_full_bar_height(box, linear):
    rect = codes.masked_rect(codes.Code("x", box, linear), (1000, 1000))
    assert rect[0] < box[0] and rect[1] < box[1] and rect[2] > box[2] and rect[3] > box[3]
    if linear:
        long_side = max(box[2] - box[0], box[3] - box[1])
        assert min(rect[2] - rect[0], rect[3] - rect[1]) >= 0.6 * long_side


def test_cover_keeps_alpha_and_leaves_the_input_alone():
    picture = Image.new("RGBA", (50, 50), (200, 100, 50, 128))
    covered = cover(picture, [(10, 10, 20, 20)])
    assert covered.getpixel((15, 15)) == (0, 0, 0, 128) and covered.getpixel((30, 30)) == (200, 100, 50, 128)
    assert picture.getpixel((15, 15)) == (200, 100, 50, 128)


def test_the_ocr_models_load_and_read_with_no_network():
    """The models ship in the rapidocr wheel: building the reader and reading must not try
    to download anything (run in a network namespace with no interface but loopback)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs root and unshare)")
    script = (
        "from PIL import Image, ImageDraw\n"
        "from veil.clean.options import TextDetectionSettings\n"
        "from veil.clean.text.ocr import TextReader\n"
        "picture = Image.new('RGB', (400, 80), 'white')\n"
        "ImageDraw.Draw(picture).text((10, 30), 'offline 12345', fill='black', font_size=24)\n"
        "print([line.text for line in TextReader().read(picture, TextDetectionSettings())])\n"
    )
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "12345" in done.stdout
