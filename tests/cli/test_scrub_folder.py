"""`veil scrub DIR OUTDIR` as a user runs it: a real folder tree, worker processes, the
files it writes, its exit code and its output."""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from builders import encode, exif_block, gradient
from e2e.photos import face_photo_with_gps

VEIL = [sys.executable, "-m", "veil.cli"]
CLEANABLE = ["holiday.jpg", "trip/day1/beach.png", "trip/portrait.jpg"]
REFUSED = {"notes.txt": "not an image format Veil recognises", "trip/broken.jpg": "past the end of the file"}


def photo_tree(root: Path) -> Path:
    gps = b"Exif\x00\x00" + exif_block(gps=True)
    files = {
        "holiday.jpg": encode(gradient(), "JPEG", exif=gps),
        "trip/day1/beach.png": encode(gradient(), "PNG", exif=gps),
        "trip/portrait.jpg": face_photo_with_gps(),
        "notes.txt": b"shopping list: milk, eggs\n",
        "trip/broken.jpg": encode(gradient(), "JPEG", exif=gps)[:200],  # cut off: corrupt
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def scrub(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*VEIL, "scrub", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_a_folder_is_cleaned_into_the_same_names_and_refusals_are_listed_not_copied(tmp_path):
    source, target = photo_tree(tmp_path / "photos"), tmp_path / "clean"
    done = scrub(source, target, "--json", "--jobs", "2")
    assert done.returncode == 2, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    by_name = {line["input"]: line for line in lines}
    assert sorted(by_name) == sorted([*CLEANABLE, *REFUSED])
    for name in CLEANABLE:
        assert by_name[name]["status"] == "cleaned" and by_name[name]["output"] == name
        assert "gps" in by_name[name]["metadata_removed"]
        assert not Image.open(target / name).getexif().get_ifd(0x8825)  # no GPS left in the copy
    assert by_name["trip/portrait.jpg"]["faces"] == 1
    for name, reason in REFUSED.items():
        assert by_name[name]["status"] == "refused" and reason in by_name[name]["reason"] and by_name[name]["output"] is None
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == sorted(CLEANABLE)
    assert "3 cleaned, 2 refused" in done.stderr and "refused notes.txt" in done.stderr


def test_without_a_terminal_each_file_gets_a_line_and_all_clean_exits_0(tmp_path):
    source, target = photo_tree(tmp_path / "photos"), tmp_path / "clean"
    for name in REFUSED:
        (source / name).unlink()
    done = scrub(source, target, "--faces", "off", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(line.split()[1] for line in done.stdout.splitlines()) == sorted(CLEANABLE)
    assert all(line.startswith("cleaned  ") for line in done.stdout.splitlines())
    assert "3 cleaned, 0 refused" in done.stderr


def test_an_output_folder_inside_the_input_is_refused(tmp_path):
    source = photo_tree(tmp_path / "photos")
    done = scrub(source, source / "clean", "--faces", "off")
    assert done.returncode == 2 and "is inside" in done.stderr and not (source / "clean").exists()


def test_on_a_terminal_a_progress_bar_shows_and_refusals_are_printed_above_it(tmp_path):
    import os
    import pty

    source, target = photo_tree(tmp_path / "photos"), tmp_path / "clean"
    controller, terminal = pty.openpty()
    process = subprocess.Popen([*VEIL, "scrub", str(source), str(target), "--faces", "off"],
                               stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=dict(os.environ, COLUMNS="100"))  # fmt: skip
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(120) == 2
    text = shown.decode(errors="replace")
    assert "cleaning" in text and "5/5" in text  # rich's bar, counting files
    assert "refused  notes.txt" in text and "3 cleaned, 2 refused" in text
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(CLEANABLE)
