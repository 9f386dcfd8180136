"""Where a log's lines live: rotated files and the order to read them in.

The active log is e.g. `audit.jsonl`; rotation renames it to `audit.jsonl.1`, then
`audit.jsonl.2`, … — numbers grow, so `.1` is the OLDEST (unlike logrotate). Reading
order is therefore `.1, .2, …, .N`, then the active file.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path


def rotated_files(active: Path) -> list[Path]:
    """The rotated siblings of `active`, oldest first."""
    pattern = re.compile(re.escape(active.name) + r"\.(\d+)")
    if not active.parent.is_dir():
        return []
    found = []
    for entry in active.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def next_rotated_name(active: Path) -> Path:
    existing = rotated_files(active)
    number = int(existing[-1].name.rsplit(".", 1)[1]) + 1 if existing else 1
    return active.with_name(f"{active.name}.{number}")


def chain_files(paths: list[str | Path]) -> list[Path]:
    """Files as given; a directory stands for every log in it, each active file preceded
    by its rotated files (so `veil audit verify DIR` checks rotation order for you)."""
    ordered: list[Path] = []
    for given in map(Path, paths):
        if not given.is_dir():
            ordered.append(given)
            continue
        actives = sorted(p for p in given.iterdir() if p.is_file() and p.suffix == ".jsonl")
        for active in actives:
            ordered.extend(rotated_files(active))
            ordered.append(active)
        # rotated files whose active log is gone (e.g. only archives were copied)
        orphans = sorted({p for p in given.iterdir() if re.search(r"\.jsonl\.\d+$", p.name)} - set(ordered))
        ordered.extend(sorted(orphans, key=lambda p: (p.name.rsplit(".", 1)[0], int(p.name.rsplit(".", 1)[1]))))
    return ordered


def by_log(paths: list[Path]) -> list[list[Path]]:
    """chain_files' list, grouped into one list per log: `audit-a.jsonl` and its rotated
    files are one chain, `audit-b.jsonl` (another instance's log in the same folder) another."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(str(path.parent / log_name(path)), []).append(path)
    return list(groups.values())


def log_name(path: Path) -> str:
    """The active file's name a (possibly rotated) file belongs to: `audit.jsonl.3` → `audit.jsonl`."""
    return re.sub(r"\.\d+$", "", path.name) if re.search(r"\.jsonl\.\d+$", path.name) else path.name


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number from 1, the line without its newline, whether it had one), streaming."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            ended = line.endswith(b"\n")
            yield number, line[:-1] if ended else line, ended


def tail(path: Path, chunk: int = 65536) -> tuple[bytes | None, bytes | None, int]:
    """(last complete line, unterminated bytes after it, number of complete lines).

    Counting lines reads the file once; rotation keeps files small enough for that to
    be quick, and it lets a repair record name the cut-off line by number."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return None, None, 0
    with open(path, "rb") as handle:
        complete_lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        end = size
        buffer = b""
        while end > 0:
            start = max(0, end - chunk)
            handle.seek(start)
            buffer = handle.read(end - start) + buffer
            end = start
            if buffer.count(b"\n") >= 2 or (end == 0):
                break
    cut = buffer.rsplit(b"\n", 1)
    unterminated = cut[1] if len(cut) == 2 else buffer
    before = cut[0] if len(cut) == 2 else b""
    last_complete = before.rsplit(b"\n", 1)[-1] if len(cut) == 2 else None
    return last_complete, (unterminated or None), complete_lines


def first_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            line = handle.readline()
    except FileNotFoundError:
        return None
    return line.rstrip(b"\n") or None


def fsync_directory(path: Path) -> None:
    """A rename survives a crash only once its directory is synced."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
