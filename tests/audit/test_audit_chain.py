"""The audit log's hash chain: written by AuditLog, checked by `veil audit verify`.

Every single-record change (edit, delete, insert, swap) must be caught at exactly the
line where it happened; a cut-off last line must be named; restarts and rotation must
continue the chain."""

import json
import os
from pathlib import Path

import pytest

from veil import audit
from veil.audit import chain, files
from veil.audit.verify import verify
from veil.cli.main import main

FACTS = audit.RequestFacts("10.0.0.7", "alice", "openai-api", "api", "POST", "https://api.openai.com/v1/files")
RECORDS = 6


def record(number: int, event: str = "sanitised", ts: str | None = None) -> dict:
    report = {"format": "jpeg", "metadata_removed": ["gps", "exif"], "faces": [{}] * (number % 3),
              "bytes_before": 1000 + number, "bytes_after": 900, "sha256_before": f"{number:064x}", "sha256_after": "b" * 64}  # fmt: skip
    written = audit.image_record(event, FACTS, envelope="multipart", location="file", report=report, duration_ms=number * 1.5)
    if ts:
        written["ts"] = ts
    return written


def write_log(path: Path, count: int = RECORDS, rotation: audit.Rotation = audit.Rotation()) -> Path:
    log = audit.AuditLog(path, rotation)
    for number in range(count):
        log.write(record(number))
    log.close()
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def problem(*paths: Path) -> str | None:
    return verify(files.chain_files(list(paths))).problem


def test_a_fresh_log_is_a_chain_from_genesis(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    records = [json.loads(line) for line in lines_of(path)]
    assert records[0]["prev_hash"] == chain.GENESIS and records[0]["seq"] == 1 and records[0]["file_start"] is True
    for before, after in zip(records, records[1:]):
        assert after["prev_hash"] == before["hash"] and after["seq"] == before["seq"] + 1
        assert "file_start" not in after
    verdict = verify([path])
    assert verdict.intact and verdict.records == RECORDS and verdict.last_hash == records[-1]["hash"]


def test_the_hash_is_sha256_of_the_sorted_compact_record_without_its_hash(tmp_path):
    import hashlib

    line = lines_of(write_log(tmp_path / "audit.jsonl", 1))[0]
    written = json.loads(line)
    claimed = written.pop("hash")
    canonical = json.dumps(written, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(canonical).hexdigest() == claimed


def test_a_record_reformatted_by_another_tool_still_verifies(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    lines[2] = (json.dumps(json.loads(lines[2]), indent=None) + "\n").encode()  # other key order, spaces
    path.write_bytes(b"".join(lines))
    assert problem(path) is None


def _edit(lines, index):
    changed = json.loads(lines[index])
    changed["faces"] += 1  # one more face than was really masked
    lines[index] = (json.dumps(changed, separators=(",", ":")) + "\n").encode()


def _delete(lines, index):
    del lines[index]


def _insert(lines, index):
    lines.insert(index, lines[(index + 2) % len(lines)])  # a genuine record, in the wrong place


def _insert_forged(lines, index):
    """A new record whose own hash is right: only its link to the chain gives it away."""
    forged = record(99)
    previous = json.loads(lines[index - 1])["hash"] if index else "f" * 64
    line, _ = chain.seal(forged, seq=index + 1, prev_hash=previous[::-1], file_start=index == 0)
    lines.insert(index, line)


def _swap(lines, index):
    lines[index], lines[index + 1] = lines[index + 1], lines[index]


_TAMPERING = {"edit": _edit, "delete": _delete, "insert-copy": _insert, "insert-forged": _insert_forged, "swap": _swap}
# Not listed: swapping the last record (nothing follows it) and deleting it, which leaves a
# valid shorter chain: only a copy of the last hash kept elsewhere reveals that (docs/audit.md, the hash chain).
_CASES = [
    pytest.param(name, index, id=f"{name}-line{index + 1}")
    for name in _TAMPERING
    for index in range(RECORDS)
    if not (name in ("swap", "delete") and index == RECORDS - 1)
]


@pytest.mark.parametrize(("name", "index"), _CASES)
def test_any_single_change_is_caught_at_exactly_that_line(tmp_path, name, index):
    tamper = _TAMPERING[name]
    expected = "hash does not match its content — this record was edited" if name == "edit" else None
    path = write_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    tamper(lines, index)
    path.write_bytes(b"".join(lines))
    found = problem(path)
    assert found is not None and found.startswith(f"{path} line {index + 1}: "), found
    if expected:
        assert expected in found
    elif index == 0:
        assert "the record(s) before it were deleted" in found or "prev_hash" in found or "was edited" in found or "inserted or edited" in found
    else:
        assert f"prev_hash does not match line {index} — a record was deleted, inserted or reordered here" in found


def test_the_cli_names_the_changed_line_and_exits_1(tmp_path, capsys):
    path = write_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    del lines[3]
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path} line 4: prev_hash does not match line 3 — a record was deleted, inserted or reordered here" in out
    assert "(record 5 follows record 3: 1 missing)" in out


def test_the_cli_says_ok_for_an_intact_chain(tmp_path, capsys):
    path = write_log(tmp_path / "audit.jsonl")
    assert main(["audit", "verify", str(path)]) == 0
    assert f"OK: {RECORDS} records in 1 file(s), chain intact" in capsys.readouterr().out


def test_a_record_cut_off_mid_write_is_named_precisely(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # what kill -9 during the last write() leaves
    found = problem(path)
    assert found == f"{path} line {RECORDS}: cut off mid-write (no end of line; the writer was killed?) — the chain is intact up to line {RECORDS - 1}"


def test_a_restart_after_a_cut_off_record_resumes_the_chain_and_records_the_loss(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    log = audit.AuditLog(path)
    log.write(record(7))
    log.close()
    verdict = verify([path])
    assert verdict.intact, verdict.problem
    assert verdict.notes == [f"{path} line {RECORDS}: a record cut off mid-write, recorded by line {RECORDS + 1} when the writer restarted"]
    repair = json.loads(lines_of(path)[RECORDS])
    assert repair["event"] == "log_repaired" and repair["truncated_line"] == RECORDS
    assert repair["prev_hash"] == json.loads(lines_of(path)[RECORDS - 2])["hash"]


def test_a_record_missing_only_its_newline_is_kept(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    path.write_bytes(path.read_bytes()[:-1])
    write_log(path, 1)
    verdict = verify([path])
    assert verdict.intact and verdict.records == RECORDS + 1 and not verdict.notes


def test_a_restart_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = audit.AuditLog(path)
    first.write(record(1))
    first.write(record(2))
    first.close()
    second = audit.AuditLog(path)
    second.write(record(3))
    second.close()
    records = [json.loads(line) for line in lines_of(path)]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[2]["prev_hash"] == records[1]["hash"] and "file_start" not in records[2]
    assert verify([path]).intact


def test_size_rotation_continues_the_chain_across_files(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path, 12, audit.Rotation(max_bytes=1500))
    rotated = files.rotated_files(path)
    assert len(rotated) >= 2
    for older in rotated:
        assert older.stat().st_size >= 1500 and oct(older.stat().st_mode)[-3:] == "600"
    ordered = [*rotated, path]
    verdict = verify(ordered)
    assert verdict.intact and verdict.records == 12
    starts = [json.loads(lines_of(p)[0]) for p in ordered]
    assert all(start["file_start"] for start in starts)
    assert starts[1]["prev_hash"] == json.loads(lines_of(rotated[0])[-1])["hash"]
    assert verify(files.chain_files([tmp_path])).records == 12  # a directory means rotation order


def test_daily_rotation_starts_a_new_file_on_a_new_day(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path, audit.Rotation(daily=True))
    log.write(record(1, ts="2026-11-25T23:59:59.000Z"))
    log.write(record(2, ts="2026-11-25T23:59:59.500Z"))
    log.close()
    log = audit.AuditLog(path, audit.Rotation(daily=True))  # a restart remembers the file's day
    log.write(record(3, ts="2026-11-26T00:00:00.100Z"))
    log.close()
    assert [len(lines_of(p)) for p in [*files.rotated_files(path), path]] == [2, 1]
    assert verify(files.chain_files([tmp_path])).intact


def test_a_restart_after_rotation_continues_from_the_rotated_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    os.rename(path, tmp_path / "audit.jsonl.1")  # rotated just before the process stopped
    write_log(path, 2)
    assert verify(files.chain_files([tmp_path])).intact


def test_rotated_files_out_of_order_are_caught(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path, 12, audit.Rotation(max_bytes=1500))
    rotated = files.rotated_files(path)
    found = problem(rotated[1], rotated[0], path)
    assert found.startswith(f"{rotated[1]} line 1: the log does not start here") or "prev_hash" in found


def test_a_later_file_alone_verifies_with_a_note(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path, 12, audit.Rotation(max_bytes=1500))
    verdict = verify([path])
    assert verdict.intact
    assert "continues a chain from an earlier file that was not given" in verdict.notes[0]


def test_deleting_the_first_record_of_a_later_file_is_caught(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path, 12, audit.Rotation(max_bytes=1500))
    path.write_bytes(b"".join(lines_of(path)[1:]))
    assert problem(path).startswith(f"{path} line 1: the log does not start here")
    assert "prev_hash does not match the last record of" in problem(tmp_path)


def test_a_garbled_line_in_the_middle_is_named(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    lines[2] = b"not json at all\n"
    path.write_bytes(b"".join(lines))
    assert problem(path) == f"{path} line 3: not a JSON record — the line was edited or corrupted"


def test_unchained_records_are_reported(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(record(1)) + "\n")
    assert "has no hash chain fields" in problem(path)


def test_missing_files_are_a_usage_error(tmp_path, capsys):
    assert main(["audit", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such log file" in capsys.readouterr().err


def test_a_directory_without_logs_is_a_usage_error(tmp_path, capsys):
    assert main(["audit", "verify", str(tmp_path)]) == 2
    assert "no audit log" in capsys.readouterr().err


def test_the_repair_record_stays_in_the_file_of_the_fragment_even_when_it_is_full(tmp_path):
    path = write_log(tmp_path / "audit.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    log = audit.AuditLog(path, audit.Rotation(max_bytes=100))  # already far past the limit
    log.write(record(7))
    log.close()
    assert json.loads(lines_of(path.with_name("audit.jsonl.1"))[-1])["event"] == "log_repaired"
    verdict = verify(files.chain_files([tmp_path]))
    assert verdict.intact, verdict.problem
    assert verdict.notes[0].endswith(f"line {RECORDS}: a record cut off mid-write, recorded by line {RECORDS + 1} when the writer restarted")


def test_logs_of_several_instances_in_one_folder_are_separate_chains(tmp_path, capsys):
    write_log(tmp_path / "audit-81.jsonl", count=4, rotation=audit.Rotation(max_bytes=1))  # rotated files too
    write_log(tmp_path / "audit-82.jsonl", count=3)
    assert [len(group) for group in files.by_log(files.chain_files([tmp_path]))] == [4, 1]
    assert main(["audit", "verify", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OK: audit-81.jsonl: 4 records in 4 file(s)" in out and "OK: audit-82.jsonl: 3 records in 1 file(s)" in out
    edited = tmp_path / "audit-82.jsonl"
    edited.write_bytes(edited.read_bytes().replace(b'"POST"', b'"PUT"', 1))
    assert main(["audit", "verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "OK: audit-81.jsonl" in out and f"BROKEN: audit-82.jsonl: {edited} line 1: hash does not match" in out
