"""One writer per audit log, with real processes: a second Veil on a running Veil's log
refuses to start and says what to do instead; the first keeps logging; the lock of a
writer killed with -9 is free for the next one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from e2e.conftest import DEFAULT_POLICY, MITMDUMP, ROOT, free_port, start_mitmdump, stop
from e2e.test_audit_proxy import small_photo_of_its_own, upload
from veil.audit.files import chain_files
from veil.audit.verify import verify_chains
from veil.audit.writer import lock_path

VEIL = [sys.executable, "-m", "veil.cli"]


def veil_run_on(audit_log: Path, tmp: Path) -> subprocess.CompletedProcess:
    command = [*VEIL, "run", "--listen-port", str(free_port()), "--confdir", str(tmp / "ca"), "--audit-log", str(audit_log)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def mitmdump_on(audit_log: Path, tmp: Path) -> subprocess.CompletedProcess:
    command = [str(MITMDUMP), "--listen-port", str(free_port()), "--set", f"confdir={tmp / 'ca'}",
               "-s", str(ROOT / "addons" / "veil_addon.py"), "--set", f"veil_audit_log={audit_log}"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def start_veil(tmp: Path, upstream, *extra: str):
    tmp.mkdir(parents=True, exist_ok=True)
    return start_mitmdump(tmp, upstream.port, DEFAULT_POLICY, "--set", "veil_workers=1", *extra)


def assert_intact(audit_log: Path, records: int):
    verdict = verify_chains([chain_files([audit_log])])
    assert verdict.intact, verdict.problem
    assert verdict.records == records


def test_a_second_veil_on_the_same_log_refuses_to_start_and_the_first_keeps_logging(upstream, tmp_path):
    first = start_veil(tmp_path / "first", upstream)
    try:
        upload(first, small_photo_of_its_own())
        assert len(first.audit_records()) == 1

        refused = veil_run_on(first.audit_log, tmp_path / "second")
        assert refused.returncode == 2
        assert f"cannot write the audit log {first.audit_log}" in refused.stderr
        assert f"pid {first.process.pid}" in refused.stderr and "--audit-log FILE" in refused.stderr

        # The proxy itself refuses too (mitmdump started by hand, or a race past `veil run`'s check).
        mitmdump_refused = mitmdump_on(first.audit_log, tmp_path / "third")
        assert mitmdump_refused.returncode != 0
        assert f"veil_audit_log: cannot open {first.audit_log}: it is already being written" in mitmdump_refused.stdout

        upload(first, small_photo_of_its_own())
        assert first.process.poll() is None
        assert len(first.audit_records()) == 2
    finally:
        stop(first)
    assert_intact(first.audit_log, 4)  # two uploads, each followed by its outcome record


def test_the_lock_of_a_writer_killed_with_minus_9_is_taken_over(upstream, tmp_path):
    killed = start_veil(tmp_path, upstream)
    upload(killed, small_photo_of_its_own())
    os.killpg(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    assert lock_path(killed.audit_log).read_text().strip() == str(killed.process.pid)  # left behind, but unlocked

    successor = start_veil(tmp_path, upstream)
    try:
        upload(successor, small_photo_of_its_own())
        assert len(successor.audit_records()) == 2
        assert lock_path(successor.audit_log).read_text().strip() == str(successor.process.pid)
    finally:
        stop(successor)
    assert_intact(successor.audit_log, 4)  # two uploads, each followed by its outcome record
