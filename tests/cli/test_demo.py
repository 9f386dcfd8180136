"""`veil demo` end to end, as a user runs it: a real mitmdump with Veil, a real HTTPS
upload through it, and what it prints and writes checked independently."""

import json
import re
import subprocess
import sys

import pytest
from PIL import Image

from e2e.photos import face_problems, metadata_problems
from veil.audit.verify import verify

VEIL = [sys.executable, "-m", "veil.cli"]


def test_the_demo_shows_what_left_the_machine_and_writes_the_pictures_and_the_record(tmp_path):
    pytest.importorskip("skimage", reason="the demo refuses without scikit-image (tested below)")
    out = tmp_path / "demo"
    done = subprocess.run([*VEIL, "demo", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("  ")[0]: re.split(r"\s{2,}", line.strip())[1:] for line in done.stdout.splitlines() if "  " in line}
    assert rows["where (GPS)"] == ["52°22'30.5\"N 4°53'41.2\"E", "-"]
    assert rows["owner"] == ["Jane Doe", "-"] and rows["camera"] == ["EOS 5D Mark IV", "-"]
    assert rows["faces"] == ["1 visible", "1 masked"]

    after = (out / "after.jpg").read_bytes()
    assert metadata_problems(after) == [] and face_problems(after) == []  # checked here, not taken from the demo
    assert face_problems((out / "before.jpg").read_bytes()) != []
    with Image.open(out / "side-by-side.png") as picture, Image.open(out / "before.jpg") as before:
        assert picture.width > 2 * before.width and picture.height > before.height

    record, outcome = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert outcome["event"] == "upstream" and outcome["delivered"] and outcome["request_id"] == record["request_id"]
    assert record["event"] == "sanitised" and record["url"] == "https://api.openai.com/v1/files" and record["faces"] == 1
    assert record["sha256_after"] in done.stdout and verify([out / "audit.jsonl"]).intact
    assert f"veil audit verify {out / 'audit.jsonl'}" in done.stdout


def test_without_scikit_image_the_demo_says_what_to_install(tmp_path):
    program = "import sys; sys.modules['skimage'] = None; from veil.cli.main import main; sys.exit(main(['demo', '--out', sys.argv[1]]))"
    done = subprocess.run([sys.executable, "-c", program, str(tmp_path / "demo")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "pip install scikit-image" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "demo").exists()
