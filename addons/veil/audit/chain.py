"""The hash chain of the audit log.

Each record carries `seq` (1, 2, 3… across rotated files), `prev_hash` (the `hash` of
the record before it, or GENESIS for the very first record of a log) and `hash`:

    hash = sha256(canonical(record without "hash")).hexdigest()
    canonical = JSON with sorted keys, no whitespace (separators "," and ":"),
                non-ASCII characters as UTF-8 (ensure_ascii=False)

The first record the writer puts in each file also has `"file_start": true`, so that a
deleted first line is told apart from a file that continues an earlier one.

The writer writes exactly the canonical text with `,"hash":"…"` added before the final
`}`. So a verifier can check a line on its bytes alone (the fast path, no JSON parse);
a line re-serialised by some other tool still verifies through the slow path (parse,
drop `hash`, canonicalise), since what is hashed is the content, not the layout.
"""

import hashlib
import json
import re
from dataclasses import dataclass

GENESIS = "0" * 64
HASH_FIELD = "hash"
REPAIR_EVENT = "log_repaired"  # written on restart after a record was cut off mid-write

_HASH_SUFFIX_LENGTH = len(',"hash":"') + 64 + len('"}')
_PREV_HASH = re.compile(rb'"prev_hash":"([0-9a-f]{64})"')
_SEQ = re.compile(rb'"seq":(\d+)[,}]')
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_REPAIR_MARK = b'"event":"' + REPAIR_EVENT.encode() + b'"'


def canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(record: dict, *, seq: int, prev_hash: str, file_start: bool) -> tuple[bytes, str]:
    """The line to append (newline included) and the new record's hash."""
    chained = dict(record, seq=seq, prev_hash=prev_hash)
    if file_start:
        chained["file_start"] = True
    body = canonical(chained)
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + f',"hash":"{digest}"}}\n'.encode(), digest


@dataclass(frozen=True)
class Link:
    """What the verifier needs from one intact line."""

    hash: str
    prev_hash: str
    seq: int
    file_start: bool
    repair_of_line: int | None  # the line number a log_repaired record says was cut off


class Unreadable(Exception):
    """The line is not JSON at all (cut off, or garbled)."""


class Edited(Exception):
    """The line is a JSON record but its hash does not match its content."""


def check_line(line: bytes) -> Link:
    """`line` without its newline. Raises Unreadable or Edited."""
    fast = _check_as_written(line)
    return fast if fast is not None else _check_by_content(line)


def _check_as_written(line: bytes) -> Link | None:
    if len(line) <= _HASH_SUFFIX_LENGTH or not line.endswith(b'"}'):
        return None
    digest = line[-66:-2]
    if line[-_HASH_SUFFIX_LENGTH : -66] != b',"hash":"' or not _HEX64.fullmatch(digest):
        return None
    body = line[:-_HASH_SUFFIX_LENGTH] + b"}"
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    prev, seq = _PREV_HASH.search(body), _SEQ.search(body)
    if not prev or not seq:
        return None
    if _REPAIR_MARK in body:
        return None  # rare: the slow path reads its truncated_line properly
    return Link(digest.decode(), prev.group(1).decode(), int(seq.group(1)), b'"file_start":true' in body, None)


def _check_by_content(line: bytes) -> Link:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise Unreadable from None
    if not isinstance(record, dict):
        raise Unreadable
    claimed = record.pop(HASH_FIELD, None)
    if not isinstance(claimed, str) or "prev_hash" not in record or not isinstance(record.get("seq"), int):
        raise Edited("it has no hash chain fields (written before Veil chained its log, or stripped)")
    if hashlib.sha256(canonical(record)).hexdigest() != claimed:
        raise Edited("hash does not match its content")
    repair = record.get("truncated_line") if record.get("event") == REPAIR_EVENT else None
    return Link(claimed, str(record["prev_hash"]), record["seq"], record.get("file_start") is True, repair)
