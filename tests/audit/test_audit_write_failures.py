"""An audit log the file system stops accepting (disk full, file size limit, I/O error):
the failed write raises, leaves nothing behind, and the chain continues intact once
writes succeed again."""

import errno
import os

import pytest

from veil import audit
from veil.audit import writer
from veil.audit import files
from veil.audit.verify import verify

from test_audit_chain import record


class FailingDisk:
    """os.write that accepts `room` more bytes, then fails with ENOSPC (a short write first,
    as a real file system does when it runs out mid-record)."""

    def __init__(self, monkeypatch, room: int):
        self.room = room
        self._real_write = os.write
        monkeypatch.setattr(writer.os, "write", self.write)

    def write(self, fd, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = self._real_write(fd, bytes(data[: self.room]))
        self.room -= taken
        return taken


def test_a_write_that_runs_out_of_space_mid_record_leaves_no_fragment(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path)
    log.write(record(0))
    size_before = path.stat().st_size
    disk = FailingDisk(monkeypatch, room=40)
    with pytest.raises(OSError) as failure:
        log.write(record(1))
    assert failure.value.errno == errno.ENOSPC
    assert path.stat().st_size == size_before  # the 40 bytes that made it were cut back off
    disk.room = 10**9  # space again
    log.write(record(2))
    log.close()
    verdict = verify(files.chain_files([path]))
    assert verdict.intact and verdict.records == 2


def test_write_all_keeps_a_requests_records_together_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path)
    disk = FailingDisk(monkeypatch, room=700)  # room for about one record of the two
    with pytest.raises(OSError):
        log.write_all([record(1), record(2)])
    assert path.read_bytes() == b""
    disk.room = 10**9
    log.write_all([record(3), record(4)])
    log.close()
    verdict = verify(files.chain_files([path]))
    assert verdict.intact and verdict.records == 2


def test_a_fragment_that_could_not_be_cut_back_is_repaired_and_named_by_the_next_write(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path)
    log.write(record(0))
    disk = FailingDisk(monkeypatch, room=30)

    def cannot_truncate(fd, size):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(writer.os, "ftruncate", cannot_truncate)
    with pytest.raises(OSError):
        log.write(record(1))
    monkeypatch.undo()
    del disk
    log.write(record(2))
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4  # record, fragment (closed by a newline), repair record, record
    verdict = verify(files.chain_files([path]))
    assert verdict.intact, verdict.problem
    assert verdict.notes == [f"{path} line 2: a record cut off mid-write, recorded by line 3 when the writer restarted"]
