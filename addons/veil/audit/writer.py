"""The audit log: one JSON line per intervention, append-only, facts and hashes only.

No image bytes, no face crops, no query strings (they carry signatures and tokens)
ever reach this file. Each record is chained to the one before it (chain.py
says how), across restarts and rotated files. A chain has one writer: each proxy
process must write its own file, since two writers appending to one file would each
continue their own chain and interleave them (the verifier would flag the file). So
the writer holds an exclusive lock on `<log>.lock` for as long as it is open, and a
second writer is refused with `LogInUse` instead of silently breaking the chain.
"""

import errno
import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from . import chain, files
from .events import now_rfc3339

log = logging.getLogger("veil")

LOCK_SUFFIX = ".lock"


class LogInUse(OSError):
    """Another open AuditLog (in this process or another) already writes this log.

    An OSError, so whoever reports "cannot open <log>: <strerror>" already says it well."""

    def __init__(self, path: Path, holder: str):
        super().__init__(
            errno.EWOULDBLOCK,
            f"it is already being written by another Veil ({holder}); one log has one writer, "
            f"so give each instance its own file (`veil run --audit-log FILE` or `--set veil_audit_log=FILE`)",
            str(path),
        )


@dataclass(frozen=True)
class Rotation:
    """When the writer starts a new file: past `max_bytes` (0: never) and/or when the UTC
    day changes (`daily`). The chain continues into the new file."""

    max_bytes: int = 0
    daily: bool = False


class AuditLog:
    """Appends chained records to `path`, one write() per record under a lock.

    On start it reads the end of the log to continue the chain. A last line cut off
    mid-write (the process was killed) is closed with a newline and left in place, and
    the chain resumes from the last intact record with a `log_repaired` record that
    names the cut-off line, so verification shows exactly what was lost."""

    def __init__(self, path: str | Path, rotation: Rotation = Rotation()):
        self.path = Path(path)
        self.rotation = rotation
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = -1
        self._tail_uncertain = False
        self._lock_fd = _take_writer_lock(self.path)
        try:
            self._start()
        except BaseException:
            self.close()  # a writer that failed to start must not keep the log locked
            raise

    def _start(self):
        self._open()
        repair = self._resume()
        self._file_day = _record_day(files.first_line(self.path))
        self._file_start = os.fstat(self._fd).st_size == 0
        if repair:
            # Never rotated away from the fragment it explains: it goes in the same file.
            self._append(repair)

    def write(self, record: dict) -> None:
        self.write_all([record])

    def write_all(self, records: list[dict]) -> None:
        """Appends every record or none of them. A write the file system refuses (disk
        full, file too large, I/O error) is cut back off and raises OSError: the chain stays
        whole, and the next write continues it as if the failed one never happened."""
        if not records:
            return
        with self._lock:
            if self._tail_uncertain:
                records = self._resume() + records
                self._tail_uncertain = False
            if self._should_rotate(records[0]):
                self._rotate()
            self._append(records)

    def _append(self, records: list[dict]):
        seq, digest, file_start, lines = self._seq, self._prev_hash, self._file_start, []
        for record in records:
            line, digest = chain.seal(record, seq=seq + 1, prev_hash=digest, file_start=file_start)
            seq, file_start = seq + 1, False
            lines.append(line)
        data = b"".join(lines)
        self._write_whole(data)
        self._seq, self._prev_hash, self._file_start = seq, digest, False
        self._size += len(data)
        self._file_day = self._file_day or records[0].get("ts", "")[:10]

    def _write_whole(self, data: bytes):
        # One write per call: flushed, and atomic under O_APPEND. A short write only happens
        # when the file system is running out; the next write then names the error.
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self._cut_back()
            raise

    def _cut_back(self):
        """Remove the part of a failed write that reached the file."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self._tail_uncertain = True  # the next write reads the tail again and repairs it

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock; the file stays (see _take_writer_lock)
                self._lock_fd = -1

    def _open(self):
        # 0600: the log names users and services; only the operator should read it.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _resume(self) -> list[dict]:
        """Continue the chain from the file's end as it is; the `log_repaired` record to
        write first when its last line was cut off mid-write."""
        self._size = os.fstat(self._fd).st_size
        self._seq, self._prev_hash, cut_line = self._resume_chain()
        return [_repair_record(self.path, cut_line)] if cut_line else []

    def _resume_chain(self) -> tuple[int, str, int | None]:
        """(seq, hash) of the last intact record, and the number of a cut-off last line."""
        last, unterminated, complete_lines = files.tail(self.path)
        cut_line = None
        if unterminated is not None:
            try:
                link = chain.check_line(unterminated)  # whole record, only the newline lost
                os.write(self._fd, b"\n")
                self._size += 1
                return link.seq, link.hash, None
            except (chain.Unreadable, chain.Edited):
                os.write(self._fd, b"\n")  # close the fragment so the next record starts clean
                self._size += 1
                cut_line = complete_lines + 1
        if last is None:
            return self._resume_from_rotated_files(cut_line)
        try:
            link = chain.check_line(last)
        except (chain.Unreadable, chain.Edited):
            log.warning(f"Veil: the last record of {self.path} is not chained; starting a new chain after it")
            return 0, chain.GENESIS, cut_line
        return link.seq, link.hash, cut_line

    def _resume_from_rotated_files(self, cut_line: int | None) -> tuple[int, str, int | None]:
        rotated = files.rotated_files(self.path)
        if not rotated:
            return 0, chain.GENESIS, cut_line
        last, _, _ = files.tail(rotated[-1])
        try:
            link = chain.check_line(last or b"")
        except (chain.Unreadable, chain.Edited):
            return 0, chain.GENESIS, cut_line
        return link.seq, link.hash, cut_line

    def _should_rotate(self, record: dict) -> bool:
        if self._size == 0:
            return False
        if self.rotation.daily and self._file_day and record.get("ts", "")[:10] != self._file_day:
            return True
        return bool(self.rotation.max_bytes) and self._size >= self.rotation.max_bytes

    def _rotate(self):
        os.close(self._fd)
        os.rename(self.path, files.next_rotated_name(self.path))
        files.fsync_directory(self.path.parent)
        self._open()
        self._file_start, self._file_day = True, None


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


def refuse_if_in_use(path: Path) -> None:
    """Raises LogInUse when a writer holds `path` now: a launcher's early, readable check.
    The writer's own lock is what protects the chain."""
    if lock_path(path).exists():
        os.close(_take_writer_lock(path))


def _take_writer_lock(path: Path) -> int:
    """An exclusive flock on `<log>.lock`, held until close() or the process's end.

    Beside the log rather than on it, because rotation renames the log. The kernel drops a
    flock when its process dies, even by kill -9, so a lock left behind by a dead writer is
    simply free: no pid check, no race. The file is never deleted (deleting it would let a
    third writer lock a new inode while the second still holds the old one); it only holds
    the holder's pid, to name it in the refusal."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise LogInUse(path, f"pid {holder}" if holder.isdigit() else "another process") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _record_day(line: bytes | None) -> str | None:
    try:
        return json.loads(line)["ts"][:10] if line else None
    except (ValueError, KeyError, TypeError):
        return None


def _repair_record(path: Path, cut_line: int) -> dict:
    return {
        "ts": now_rfc3339(),
        "event": chain.REPAIR_EVENT,
        "truncated_line": cut_line,
        "reason": f"line {cut_line} of {path.name} was cut off mid-write (the process was killed?); "
        "it is not part of the chain, which resumes here from the last intact record",
    }
