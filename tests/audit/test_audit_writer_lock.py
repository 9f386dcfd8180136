"""One writer per log inside one process too, and rotation keeps the lock where it is."""

import pytest

from veil import audit
from veil.audit import files
from veil.audit.verify import verify_chains
from veil.audit.writer import lock_path


def test_a_second_writer_is_refused_naming_the_log_until_the_first_closes(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = audit.AuditLog(path)
    with pytest.raises(audit.LogInUse) as refused:
        audit.AuditLog(path)
    assert refused.value.filename == str(path) and "veil_audit_log" in refused.value.strerror
    first.close()
    audit.AuditLog(path).close()


def test_rotation_keeps_one_lock_beside_the_active_log(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path, audit.Rotation(max_bytes=1))
    for number in range(3):
        log.write({"ts": "2026-12-01T00:00:00.000Z", "event": "passed", "n": number})
    with pytest.raises(audit.LogInUse):
        audit.AuditLog(path)
    log.close()
    assert len(files.rotated_files(path)) == 2 and lock_path(path).exists()
    assert files.chain_files([tmp_path]) == [*files.rotated_files(path), path]  # the lock file is no log
    assert verify_chains(files.by_log(files.chain_files([tmp_path]))).intact


def test_a_writer_that_fails_to_start_leaves_the_log_unlocked(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"

    def unreadable_tail(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patched:
        patched.setattr(files, "tail", unreadable_tail)  # reading the chain's end fails after the lock is taken
        with pytest.raises(PermissionError):
            audit.AuditLog(path)
    audit.AuditLog(path).close()  # not refused as "in use" by the failed attempt
