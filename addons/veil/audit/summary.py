"""Tables of what Veil did, by service, user, event and day, built in one pass."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from .records import is_upload, is_upstream

DIMENSIONS = ("service", "user", "event", "day")


@dataclass
class Tally:
    uploads: int = 0  # images seen (one record each), whatever happened to them
    sanitised: int = 0
    monitored: int = 0
    blocked: int = 0
    passed: int = 0
    faces_masked: int = 0
    gps_removed: int = 0  # images whose GPS position was removed
    bytes: int = 0  # image bytes seen (before cleaning)
    delivered: int = 0  # requests the service took (an `upstream` record with a status below 400)
    not_delivered: int = 0  # requests let through that never arrived, or were refused by the service

    def add(self, record: dict):
        self.add_counts(counts_of(record))

    def add_counts(self, counts: tuple):
        """Unrolled on purpose: this runs once per record per table (a million-record log)."""
        uploads, sanitised, monitored, blocked, passed, faces, gps, size, delivered, not_delivered = counts
        self.uploads += uploads
        self.sanitised += sanitised
        self.monitored += monitored
        self.blocked += blocked
        self.passed += passed
        self.faces_masked += faces
        self.gps_removed += gps
        self.bytes += size
        self.delivered += delivered
        self.not_delivered += not_delivered

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def counts_of(record: dict) -> tuple:
    """What one record adds to a Tally, in its field order; computed once per record."""
    event = record.get("event")
    if event == "upstream":
        delivered = bool(record.get("delivered"))
        return (0, 0, 0, 0, 0, 0, 0, 0, int(delivered), int(not delivered))
    cleaned = event == "sanitised"
    return (
        1, int(cleaned), int(event == "monitored"), int(event == "blocked"), int(event == "passed"),
        (record.get("faces") or 0) if cleaned else 0,
        int(cleaned and "gps" in (record.get("metadata_removed") or ())),
        record.get("bytes_before") or 0, 0, 0,
    )  # fmt: skip


@dataclass
class Summary:
    total: Tally = field(default_factory=Tally)
    by: dict[str, dict[str, Tally]] = field(default_factory=lambda: {d: defaultdict(Tally) for d in DIMENSIONS})
    first_ts: str | None = None
    last_ts: str | None = None

    def add(self, record: dict):
        """Counts one record, if it is an upload's or its outcome's (a repair record is neither)."""
        if not (is_upload(record) or is_upstream(record)):
            return
        counts, ts = counts_of(record), record.get("ts") or ""
        self.total.add_counts(counts)
        by = self.by
        by["service"][record.get("service") or "-"].add_counts(counts)
        by["user"][record.get("user") or "-"].add_counts(counts)
        by["event"][record.get("event") or "-"].add_counts(counts)
        by["day"][ts[:10] or "-"].add_counts(counts)
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def as_dict(self) -> dict:
        return {
            "first": self.first_ts,
            "last": self.last_ts,
            "total": self.total.as_dict(),
            **{dim: {key: tally.as_dict() for key, tally in sorted(rows.items())} for dim, rows in self.by.items()},
        }


def summarise(records: Iterable[dict]) -> Summary:
    """Memory grows with the number of distinct services, users and days, not records."""
    summary = Summary()
    for record in records:
        summary.add(record)
    return summary
