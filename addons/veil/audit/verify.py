"""Checking the hash chain of one log (its files in rotation order), streaming; several
logs (one per proxy instance) are separate chains, each checked on its own.

The verdict names the first line that breaks the chain, and what kind of change
explains it: an edited record (its hash no longer matches its content), a record
deleted, inserted or reordered (its prev_hash does not match the line before), a
record cut off mid-write, or missing first records.
"""

from dataclasses import dataclass, field
from pathlib import Path

from . import chain
from .files import numbered_lines


@dataclass
class Verdict:
    files: list[Path]
    records: int = 0
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    last_hash: str | None = None
    chains: list["Verdict"] = field(default_factory=list)  # one per log, when there are several

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass
class _Previous:
    where: str  # "line 16" or "audit.jsonl.1 line 40"
    path: Path
    link: chain.Link


def verify(paths: list[Path]) -> Verdict:
    verdict = Verdict(files=list(paths))
    previous: _Previous | None = None
    for path in paths:
        try:
            previous = _verify_file(path, previous, verdict)
        except OSError as error:
            verdict.problem = f"{path}: cannot read: {error.strerror}"
        if verdict.problem:
            return verdict
        if previous is None:
            verdict.notes.append(f"{path}: empty")
    verdict.last_hash = previous.link.hash if previous else None
    return verdict


def verify_chains(groups: list[list[Path]]) -> Verdict:
    """Each log checked as its own chain (several instances' logs side by side); one verdict
    for all of them: intact only if every chain is, its problem the first chain's problem."""
    verdicts = [verify(group) for group in groups]
    if len(verdicts) == 1:
        return verdicts[0]
    combined = Verdict(files=[path for group in groups for path in group])
    for verdict in verdicts:
        combined.records += verdict.records
        combined.notes += verdict.notes
        combined.problem = combined.problem or verdict.problem
    combined.chains = verdicts
    return combined


def _verify_file(path: Path, previous: _Previous | None, verdict: Verdict) -> _Previous | None:
    cut_off: int | None = None  # a line cut off mid-write, waiting for its repair record
    first_line = True
    for number, line, ended in numbered_lines(path):
        here = f"{path} line {number}"
        try:
            link = chain.check_line(line)
        except chain.Unreadable:
            if not ended:
                verdict.problem = f"{here}: cut off mid-write (no end of line; the writer was killed?) — {_intact_until(previous, path)}"
                return previous
            if cut_off is not None or not line.strip():
                verdict.problem = f"{here}: {'blank line' if not line.strip() else 'not a JSON record'} — a line was inserted or corrupted here"
                return previous
            cut_off, first_line = number, False
            continue
        except chain.Edited as why:
            verdict.problem = f"{here}: {why} — this record was edited"
            return previous
        if cut_off is not None:
            if link.repair_of_line != cut_off:
                verdict.problem = f"{path} line {cut_off}: not a JSON record — the line was edited or corrupted"
                return previous
            verdict.notes.append(f"{path} line {cut_off}: a record cut off mid-write, recorded by line {number} when the writer restarted")
            cut_off = None
        problem = _link_problem(link, previous, path, number, first_line)
        if problem:
            verdict.problem = f"{here}: {problem}"
            return previous
        if previous is None and link.prev_hash != chain.GENESIS:
            verdict.notes.append(f"{here}: continues a chain from an earlier file that was not given (record {link.seq}); checked from here on")
        verdict.records += 1
        previous, first_line = _Previous(f"line {number}", path, link), False
    if cut_off is not None:
        verdict.problem = f"{path} line {cut_off}: not a JSON record — the line was edited or corrupted"
    return previous


def _link_problem(link: chain.Link, previous: _Previous | None, path: Path, number: int, first_line: bool) -> str | None:
    if (link.seq == 1) != (link.prev_hash == chain.GENESIS):
        return "only record 1 of a chain may start from the genesis hash, and it must — this record was inserted or edited"
    if previous is None:
        if link.seq == 1:
            return None
        if link.file_start and first_line:
            return None
        return (
            f"the log does not start here (this is record {link.seq} of its chain, and not the first "
            "its writer put in this file) — the record(s) before it were deleted"
        )
    if link.prev_hash == previous.link.hash:
        return None
    where = previous.where if previous.path == path else f"the last record of {previous.path} ({previous.where})"
    return f"prev_hash does not match {where} — a record was deleted, inserted or reordered here{_seq_hint(link, previous)}"


def _seq_hint(link: chain.Link, previous: _Previous) -> str:
    expected = previous.link.seq + 1
    if link.seq > expected:
        return f" (record {link.seq} follows record {previous.link.seq}: {link.seq - expected} missing)"
    if link.seq < expected:
        return f" (record {link.seq} after record {previous.link.seq}: out of order or inserted)"
    return ""


def _intact_until(previous: _Previous | None, path: Path) -> str:
    if previous is None:
        return "no intact record before it"
    return f"the chain is intact up to {previous.where if previous.path == path else f'{previous.path} {previous.where}'}"
