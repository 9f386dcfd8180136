"""`veil scrub DIR OUTDIR`: every file under DIR cleaned into OUTDIR under the same
relative name, in worker processes. What Veil cannot clean (not an image, corrupt, too
large) is refused and listed, never copied: a copy would carry its metadata along.

Output: a progress bar on a terminal, else one line per file (or, with --json, one JSON
object per file) on stdout; a summary on stderr. Exit 0 when every file was cleaned, 2
when any was refused (the others are still written).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

from ..clean.errors import SanitiseError
from ..clean.options import SanitiseOptions
from .output import output_refusal, write_atomically

EXIT_REFUSED = 2
ORT_THREADS_ENV = "VEIL_ORT_THREADS"  # read by clean/faces/detector.py


@dataclass(frozen=True)
class Outcome:
    input: str  # relative to DIR
    output: str | None  # relative to OUTDIR; None when refused
    status: str  # "cleaned" or "refused"
    reason: str = ""
    faces: int = 0
    metadata_removed: tuple[str, ...] = ()

    def line(self) -> str:
        if self.status == "refused":
            return f"refused  {self.input}: {self.reason}"
        removed = ", ".join(self.metadata_removed) or "nothing"
        return f"cleaned  {self.input}  (faces: {self.faces}; removed: {removed})"


def folder_refusal(source: Path, target: Path) -> str | None:
    """OUTDIR inside DIR would be walked while being written; an existing OUTDIR that is not a
    directory cannot hold the tree."""
    if target.resolve().is_relative_to(source.resolve()):
        return f"{target} is inside {source}; write the clean copies somewhere else"
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return f"{target} exists and is not a directory"
    return None


def scrub_folder(source: Path, target: Path, options: SanitiseOptions, jobs: int, as_json: bool) -> int:
    relative_names = sorted(_files_under(source))
    outcomes = _run_in_workers(source, target, relative_names, options, jobs, as_json)
    refused = [outcome for outcome in outcomes if outcome.status == "refused"]
    print(f"veil: {len(outcomes) - len(refused)} cleaned, {len(refused)} refused, into {target}", file=sys.stderr)
    for outcome in refused:
        print(f"  refused {outcome.input}: {outcome.reason}", file=sys.stderr)
    return EXIT_REFUSED if refused else 0


def _files_under(source: Path):
    """Relative names of every non-directory under `source`; symlinked folders are not entered."""
    for folder, _, names in os.walk(source):
        for name in names:
            yield str((Path(folder) / name).relative_to(source))


def _run_in_workers(source, target, names, options, jobs, as_json) -> list[Outcome]:
    report = _ProgressBar(len(names)) if sys.stderr.isatty() and not as_json else _Lines(as_json)
    outcomes = []
    # Not plain fork: the progress bar's refresh thread runs while workers start.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(jobs, multiprocessing.get_context(method), initializer=_share_the_cores, initargs=(jobs,))
    with report, pool:
        pending = {pool.submit(clean_one, source, target, name, options): name for name in names}
        for future in as_completed(pending):
            outcome = _outcome_of(future, pending[future])
            outcomes.append(outcome)
            report.add(outcome)
    return sorted(outcomes, key=lambda outcome: outcome.input)


def _outcome_of(future, name: str) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool:  # a worker was killed (out of memory?): its files are not written
        return Outcome(name, None, "refused", "the worker process cleaning it died")


def _share_the_cores(jobs: int):
    """Each worker's face detector gets its share of the cores, not two threads each."""
    if jobs > 1:
        os.environ.setdefault(ORT_THREADS_ENV, str(max(1, (os.cpu_count() or 1) // jobs)))


def clean_one(source: Path, target: Path, name: str, options: SanitiseOptions) -> Outcome:
    """In a worker process: one file in, its clean copy out, or the reason it was refused."""
    from ..clean.core import sanitise

    path, out = source / name, target / name
    if path.is_symlink() or not path.is_file():
        return Outcome(name, None, "refused", "not a regular file (symbolic links are not followed)")
    try:
        result = sanitise(path.read_bytes(), options)
    except OSError as error:
        return Outcome(name, None, "refused", f"cannot read: {error.strerror}")
    except SanitiseError as error:
        return Outcome(name, None, "refused", error.reason)
    refusal = output_refusal(out)
    if refusal:
        return Outcome(name, None, "refused", refusal)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out, result.data)
    except OSError as error:
        return Outcome(name, None, "refused", f"cannot write {out}: {error.strerror}")
    report = result.report
    return Outcome(name, name, "cleaned", faces=len(report.faces), metadata_removed=tuple(report.metadata_removed))


class _Lines:
    """Not a terminal: one line per file as it finishes, plain or JSON."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add(self, outcome: Outcome):
        print(json.dumps(asdict(outcome)) if self.as_json else outcome.line(), flush=True)


class _ProgressBar:
    """A terminal: a bar on stderr; refusals are printed above it as they happen."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("cleaning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self.task = self.progress.add_task("files", total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def add(self, outcome: Outcome):
        if outcome.status == "refused":
            self.progress.console.print(outcome.line(), markup=False, highlight=False)
        self.progress.advance(self.task)
