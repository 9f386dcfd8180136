"""Records of a log as a stream of dicts, and the filters `veil audit` offers."""

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import chain
from .files import numbered_lines

IMAGE_EVENTS = ("sanitised", "monitored", "blocked", "passed")


def read_records(paths: Iterable[Path], skipped: list | None = None) -> Iterator[dict]:
    """Every record that parses, in order; lines that do not parse are counted in
    `skipped` (verification is where they are explained)."""
    for path in paths:
        for number, line, _ in numbered_lines(path):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                yield record
            elif skipped is not None:
                skipped.append((path, number))


def is_upload(record: dict) -> bool:
    return record.get("event") in IMAGE_EVENTS


def is_upstream(record: dict) -> bool:
    """The outcome of a forwarded request (see events.upstream_record)."""
    return record.get("event") == "upstream"


@dataclass(frozen=True)
class Filter:
    since: str | None = None  # RFC 3339 UTC, compared as text with the records' `ts`
    until: str | None = None  # exclusive
    user: str | None = None
    service: str | None = None
    event: str | None = None

    def accepts(self, record: dict) -> bool:
        ts = record.get("ts") or ""
        if self.since and ts < self.since or self.until and ts >= self.until:
            return False
        if self.user is not None and (record.get("user") or "-") != self.user:
            return False
        if self.service is not None and record.get("service") != self.service:
            return False
        return self.event is None or record.get("event") == self.event


def select(records: Iterable[dict], where: Filter) -> Iterator[dict]:
    return (record for record in records if where.accepts(record) and record.get("event") != chain.REPAIR_EVENT)


_RELATIVE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> str:
    """'2026-11-26', '2026-11-26T08:00', '2026-11-26T08:00:00+01:00' or '36h' / '7d' ago,
    as the records' own timestamp format, so comparing text compares instants."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not a time: use 2026-11-26, 2026-11-26T08:00Z or 7d / 24h / 30m ago") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
