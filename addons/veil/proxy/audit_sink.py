"""Where the proxy's audit records go: the chained log, and — while it cannot be written —
a bounded backlog of the records of refused uploads, written in order once it can again.

Nothing is forwarded that the log could not account for: `record` says False, and the
caller refuses the request (503) instead.
"""

import logging
from pathlib import Path

from ..audit import AuditLog, Rotation
from .metrics import Metrics

log = logging.getLogger("veil")

# Records of refused uploads kept while the audit log cannot be written, written once it
# can again. Beyond this many, the oldest are dropped (and the drop is logged).
AUDIT_BACKLOG_LIMIT = 10_000


class AuditSink:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.log: AuditLog | None = None
        self.failure: str | None = None  # why the last write failed, until one succeeds
        self.backlog: list[dict] = []

    def open(self, path: str, rotation: Rotation):
        """Writes go to `path` from now on. One writer per log (a lock held for the writer's
        life): reopening the same file, for new rotation settings, lets go of it first; a
        failed reopen keeps the old writer. Raises OSError."""
        previous = self.log
        same_file = previous is not None and previous.path == Path(path)
        if same_file:
            previous.close()
        try:
            # Writes happen on the event loop, as does this: the old writer is idle, so the
            # new one reads the final end of the chain.
            opened = AuditLog(path, rotation)
        except OSError:
            if same_file:
                self.log = AuditLog(path, previous.rotation)  # keep writing as before
            raise
        if previous and not same_file:
            previous.close()
        self.log = opened

    def record(self, records: list[dict]) -> bool:
        """Write a request's records (after any kept from a failing spell), all or none;
        False when the audit log cannot be written."""
        if not records:
            return True  # a chat request without images: nothing to account for
        return self.flush() and self._write(records)

    def keep_for_later(self, records: list[dict]):
        """Records of what was refused (or already let through) while the log is failing."""
        self.backlog.extend(records)
        if len(self.backlog) > AUDIT_BACKLOG_LIMIT:
            del self.backlog[: len(self.backlog) - AUDIT_BACKLOG_LIMIT]
            log.error(f"Veil: more than {AUDIT_BACKLOG_LIMIT} audit records waiting for a writable log; dropped the oldest")

    def flush(self) -> bool:
        if not self.backlog:
            return True
        if not self._write(self.backlog):
            return False
        log.warning(f"Veil: the audit log can be written again; {len(self.backlog)} record(s) of refused uploads written")
        self.backlog, self.failure = [], None
        return True

    def close(self):
        if self.log:
            self.log.close()

    def _write(self, records: list[dict]) -> bool:
        try:
            self.log.write_all(records)  # the chained log first: metrics never count what the log lacks
        except OSError as error:
            self.metrics.count_error("audit_write")
            if self.failure is None:
                log.error(f"Veil: cannot write the audit log {self.log.path}: {error.strerror or error}; "
                          "protected uploads are refused until it can be written")  # fmt: skip
            self.failure = error.strerror or str(error)
            return False
        for record in records:
            self.metrics.observe(record)
        return True
