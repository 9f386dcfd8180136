"""`veil audit report --html` rendered by a real headless Chromium: the charts draw,
offline, and the verification banner shows. Skips when Debian's chromium is absent
(scripts/install-system-deps installs it)."""

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from veil import audit
from veil.audit.html_report import PALETTE

VEIL = Path(sys.executable).with_name("veil")
SERVICES = ("openai-api", "anthropic-api", "gemini-api")
WIDTH, HEIGHT = 1000, 1800


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed (scripts/install-system-deps installs Debian's chromium)")
    return found


def headless(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def write_week_of_records(path: Path):
    rng = random.Random(6)
    log = audit.AuditLog(path)
    for day in range(20, 27):
        for _ in range(rng.randint(3, 9)):
            service, user = rng.choice(SERVICES), rng.choice(("alice", "bob", "carol", None))
            facts = audit.RequestFacts("10.0.0.2", user, service, "api", "POST", f"https://{service}.example/v1/x")
            if rng.random() < 0.2:
                record = audit.image_record("blocked", facts, envelope=None, location=None, reason="unsupported image format: gif")
            else:
                report = {"format": "jpeg", "metadata_removed": rng.sample(["gps", "exif", "camera", "xmp", "thumbnail"], 3),
                          "faces": [{}] * rng.randint(0, 2), "bytes_before": 50_000, "bytes_after": 45_000}  # fmt: skip
                record = audit.image_record("sanitised", facts, envelope="multipart", location="file", report=report, duration_ms=80)
            log.write(dict(record, ts=f"2026-11-{day}T{rng.randint(0, 23):02d}:00:00.000Z"))
    log.close()


@pytest.fixture
def report(tmp_path) -> Path:
    write_week_of_records(tmp_path / "audit.jsonl")
    out = tmp_path / "report.html"
    done = subprocess.run([str(VEIL), "audit", "report", "--html", str(out), str(tmp_path / "audit.jsonl")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_the_report_draws_its_charts_in_chromium(report, tmp_path):
    browser = chromium()
    dom = headless(browser, tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<svg class="chart"') == 4
    assert dom.stdout.count('class="bar"') > 20
    assert "Hash chain intact" in dom.stdout

    screenshot = tmp_path / "report.png"
    shot = headless(browser, tmp_path, f"--screenshot={screenshot}", f"--window-size={WIDTH},{HEIGHT}", report.as_uri())
    assert screenshot.exists(), shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        pixels = image.convert("RGB")
        counts = _colour_counts(pixels)
    for colour in PALETTE[:3]:  # one per service in the stacked chart; the first also fills the bar charts
        assert counts.get(_rgb(colour), 0) > 200, f"chart colour {colour} barely drawn: {counts.get(_rgb(colour), 0)} px"
    assert counts.get(_rgb("#e3f4e1"), 0) > 2000, "the green 'chain intact' banner is missing"


def test_a_broken_chain_turns_the_banner_red(report, tmp_path):
    log = tmp_path / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:3] + lines[4:]))
    subprocess.run([str(VEIL), "audit", "report", "--html", str(report), str(log)], check=True, capture_output=True, timeout=60)
    browser = chromium()
    screenshot = tmp_path / "broken.png"
    headless(browser, tmp_path, f"--screenshot={screenshot}", f"--window-size={WIDTH},600", report.as_uri())
    with Image.open(screenshot) as image:
        counts = _colour_counts(image.convert("RGB"))
    assert counts.get(_rgb("#fde2e2"), 0) > 2000 and counts.get(_rgb("#e3f4e1"), 0) == 0


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _colour_counts(image: Image.Image) -> dict:
    return {colour: count for count, colour in image.getcolors(maxcolors=1 << 20)}
