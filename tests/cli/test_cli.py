"""`veil scrub` as a user runs it: a real subprocess, real files, exit codes."""

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from builders import encode, exif_block, gradient

VEIL = [sys.executable, "-m", "veil.cli"]


def scrub(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*VEIL, "scrub", *map(str, args)], input=stdin, capture_output=True, timeout=120)


@pytest.fixture
def gps_jpeg(tmp_path) -> Path:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(encode(gradient(), "JPEG", exif=b"Exif\x00\x00" + exif_block(gps=True)))
    return path


def test_scrub_writes_a_clean_file_and_prints_the_report(gps_jpeg, tmp_path):
    out = tmp_path / "clean.jpg"
    done = scrub(gps_jpeg, out, "--faces", "off", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "gps" in report["metadata_removed"] and report["face_mode"] == "off"
    assert report["bytes_after"] == out.stat().st_size
    assert not Image.open(out).getexif()


def test_refused_input_exits_2_with_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(encode(gradient(), "JPEG")[:200])
    out = tmp_path / "out.jpg"
    done = scrub(bad, out)
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and "past the end of the file" in done.stderr.decode()
    assert b"Traceback" not in done.stderr and not out.exists()
    assert not list(tmp_path.glob(".out.jpg*"))  # no temporary left behind


def test_unsupported_and_missing_inputs_exit_2(tmp_path):
    jxl = tmp_path / "a.jxl"  # JPEG XL: recognised, not supported
    jxl.write_bytes(b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(64))
    assert scrub(jxl, tmp_path / "o.jxl", "--faces", "off").returncode == 2
    done = scrub(tmp_path / "nope.jpg", tmp_path / "o.jpg")
    assert done.returncode == 2 and b"cannot read" in done.stderr


def test_too_large_is_refused(gps_jpeg, tmp_path):
    done = scrub(gps_jpeg, tmp_path / "o.jpg", "--max-megapixels", "0.001")
    assert done.returncode == 2 and b"limit" in done.stderr


def test_stdin_to_stdout(gps_jpeg):
    done = scrub("-", "-", "--faces", "off", stdin=gps_jpeg.read_bytes())
    assert done.returncode == 0 and done.stdout[:2] == b"\xff\xd8"
    assert b"GPS" not in done.stdout and b"Cam" not in done.stdout


def test_drop_icc(tmp_path):
    from PIL import ImageCms

    source = tmp_path / "icc.png"
    source.write_bytes(encode(gradient(), "PNG", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()))
    done = scrub(source, tmp_path / "o.png", "--faces", "off", "--drop-icc", "--json")
    assert json.loads(done.stdout)["icc"] == "dropped"
    assert "icc_profile" not in Image.open(tmp_path / "o.png").info


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`veil policy check | head -1`: the pipe closes before Veil writes."""
    process = subprocess.Popen([*VEIL, "policy", "check"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(60) == 141, stderr
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr


def special_outputs(folder: Path) -> dict[str, Path]:
    """Things that are not a regular file, made in `folder` (a device node needs root)."""
    made = {"fifo": folder / "pipe", "directory": folder / "dir", "symlink": folder / "link.jpg", "socket": folder / "sock"}
    os.mkfifo(made["fifo"])
    made["directory"].mkdir()
    (folder / "target.jpg").write_bytes(b"unchanged")
    made["symlink"].symlink_to(folder / "target.jpg")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(made["socket"]))
    listener.close()  # the socket file stays
    if os.geteuid() == 0:
        made["device"] = folder / "null"
        os.mknod(made["device"], stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    return made


def test_scrub_refuses_an_output_that_is_not_a_regular_file_and_touches_nothing(gps_jpeg, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    made = special_outputs(outputs)
    before = {entry.name: os.lstat(entry) for entry in outputs.iterdir()}
    expected = {"fifo": "is a FIFO", "directory": "is a directory", "symlink": "is a symbolic link",
                "socket": "is a socket", "device": "is a character device"}  # fmt: skip
    for kind, path in made.items():
        done = scrub(gps_jpeg, path, "--faces", "off")
        assert done.returncode == 2, kind
        assert f"veil: {path} {expected[kind]}" in done.stderr.decode()
    after = {entry.name: os.lstat(entry) for entry in outputs.iterdir()}
    assert after.keys() == before.keys()  # no temporary file was ever made
    for name, status in after.items():
        assert (status.st_mode, status.st_ino, status.st_mtime_ns) == (before[name].st_mode, before[name].st_ino, before[name].st_mtime_ns)
    assert (outputs / "target.jpg").read_bytes() == b"unchanged"


def test_scrub_replaces_a_regular_file(gps_jpeg, tmp_path):
    out = tmp_path / "existing.jpg"
    out.write_bytes(b"old")
    assert scrub(gps_jpeg, out, "--faces", "off").returncode == 0
    assert out.read_bytes()[:2] == b"\xff\xd8"
