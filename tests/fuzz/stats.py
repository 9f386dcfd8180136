"""Counters of what the fuzz properties saw, for scripts/fuzz's summary table.

Each property counts its examples by outcome (cleaned, blocked and why, forwarded...).
When VEIL_FUZZ_STATS_DIR is set, every pytest process (each xdist worker) writes its
counts and the outcome and duration of each fuzz test there at the end of the session;
scripts/fuzz adds them up. Nothing is written otherwise.
"""

import json
import os
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

_counts: dict[str, Counter] = defaultdict(Counter)
_tests: dict[str, dict] = {}


def count(prop: str, outcome: str) -> None:
    _counts[prop]["examples"] += 1
    _counts[prop][outcome] += 1


@contextmanager
def example(prop: str):
    """Around one example: an exception escaping it (a property violated, hypothesis then
    shrinking it) is counted as a failed example, then re-raised."""
    try:
        yield
    except BaseException as error:
        count(prop, f"FAILED: {type(error).__name__}")
        raise


def note(prop: str, fact: str) -> None:
    """Something worth knowing about an example already counted."""
    _counts[prop]["note: " + fact] += 1


def test_finished(property_name: str, nodeid: str, outcome: str, seconds: float) -> None:
    _tests[nodeid] = {"property": property_name, "outcome": outcome, "seconds": round(seconds, 3)}


def write(worker: str) -> None:
    folder = os.environ.get("VEIL_FUZZ_STATS_DIR")
    if not folder or not (_counts or _tests):
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    facts = {"counts": {name: dict(counter) for name, counter in _counts.items()}, "tests": _tests}
    (Path(folder) / f"{worker}.json").write_text(json.dumps(facts, indent=1))
