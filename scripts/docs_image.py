"""Makes docs/images/masked-upload.png, the README's before/after picture, from real output.

scikit-image's astronaut (public domain) gets GPS and owner EXIF with piexif, goes through
`veil scrub --json` as a user would run it, and the picture shows the two images side by
side with a caption built from the scrub report, so it shows what Veil did, not what we say
it does. Run it again after a change to what scrub removes:

    PYTHONPATH=addons .venv/bin/python scripts/docs_image.py

Needs the test extras (scikit-image, piexif).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import piexif
from PIL import Image, ImageDraw, ImageFont
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "images" / "masked-upload.png"
PANEL_PX = 360  # each image's side in the picture: small enough to keep the PNG under ~300 KB
MARGIN = 12
CAPTION_FONT_PX = 15


def dirty_photo() -> bytes:
    """The astronaut as a phone would save it: where it was taken, by whom, with what."""
    def rational(value: float) -> tuple[int, int]:
        return (round(value * 10_000), 10_000)

    exif = {
        "0th": {piexif.ImageIFD.Make: b"PhoneMaker", piexif.ImageIFD.Model: b"Phone 12",
                piexif.ImageIFD.Artist: b"Eileen Collins", piexif.ImageIFD.DateTime: b"2026:11:26 08:27:32"},
        "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-4711-0815"},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: (rational(28), rational(31), rational(26.6)),
                piexif.GPSIFD.GPSLongitudeRef: b"W", piexif.GPSIFD.GPSLongitude: (rational(80), rational(39), rational(3.1))},
    }
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90, exif=piexif.dump(exif))
    return buffer.getvalue()


def scrub(photo: bytes, work: Path) -> tuple[bytes, dict]:
    """Runs the real command line, so the picture is what a user gets."""
    before, after = work / "before.jpg", work / "after.jpg"
    before.write_bytes(photo)
    done = subprocess.run([sys.executable, "-m", "veil.cli", "scrub", str(before), str(after), "--json"],
                          capture_output=True, text=True, check=True)
    return after.read_bytes(), json.loads(done.stdout)


def caption(report: dict) -> str:
    removed = ", ".join(report["metadata_removed"]) or "nothing"
    verification = report["verification"]
    parsers = " and ".join(verification["parsers"])
    return (f"Removed: {removed}. Faces masked: {len(report['masks'])}. "
            f"Verified: metadata {verification['metadata']} ({parsers} parsers); {verification['faces']}.")


def compose(before: bytes, after: bytes, text: str) -> Image.Image:
    font = ImageFont.load_default(size=CAPTION_FONT_PX)
    panels = [Image.open(io.BytesIO(raw)).convert("RGB").resize((PANEL_PX, PANEL_PX), Image.LANCZOS) for raw in (before, after)]
    labels = ("Uploaded by the user", "What the AI service receives")
    width = 2 * PANEL_PX + 3 * MARGIN
    line_px = CAPTION_FONT_PX + 6
    # The caption wraps by measured width, since the list of removed categories varies.
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if font.getlength(trial) > width - 2 * MARGIN and current:
            lines.append(current)
            current = word
        else:
            current = trial
    lines.append(current)
    height = MARGIN + line_px + PANEL_PX + MARGIN + len(lines) * line_px + MARGIN
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (panel, label) in enumerate(zip(panels, labels)):
        left = MARGIN + index * (PANEL_PX + MARGIN)
        draw.text((left, MARGIN), label, fill="black", font=font)
        canvas.paste(panel, (left, MARGIN + line_px))
    top = MARGIN + line_px + PANEL_PX + MARGIN
    for number, line in enumerate(lines):
        draw.text((MARGIN, top + number * line_px), line, fill=(60, 60, 60), font=font)
    return canvas


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="veil-docs-image-") as work:
        before = dirty_photo()
        after, report = scrub(before, Path(work))
    picture = compose(before, after, caption(report))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the file small; the photos stay recognisable at this size.
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(OUTPUT, optimize=True)
    print(f"{OUTPUT.relative_to(ROOT)}: {OUTPUT.stat().st_size:,} bytes; {caption(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
