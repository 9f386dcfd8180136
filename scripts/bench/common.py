"""What every benchmark prints about the machine and the code it measured."""

import argparse
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/common.py -> the repository


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "addons"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head.stdout.strip() or "unknown") + (" + uncommitted changes in addons/" if dirty.stdout.strip() else "")


def at_least_one(text: str) -> int:
    """argparse type for a number of things (uploads, clients, workers): 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run_and_clean_up(
    name: str, work: Callable[[Path], tuple[list[str], bool]], clean_up: Callable[[], None]
) -> int:
    """Runs work(scratch folder) -> (lines to print, passed) and always clean_up() after it:
    Ctrl-C, SIGTERM and SIGHUP become a clean stop that leaves no proxy or worker behind.
    Returns the exit code: 0, 1 when `work` says a check failed, 130 when interrupted."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: it may start ignored
        signal.signal(signum, interrupted)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"veil-{name}-") as scratch:
            try:
                out, passed = work(Path(scratch))
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
                clean_up()
    except KeyboardInterrupt:
        _log(name, "interrupted; every process this run started has been stopped")
        return 130
    print("\n".join(out))
    _log(name, f"done in {time.monotonic() - started:.0f} s" + ("" if passed else ": CHECKS FAILED (see the table)"))
    return 0 if passed else 1


def _log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr, flush=True)
