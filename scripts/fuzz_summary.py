"""The table scripts/fuzz prints: per fuzz property, the examples run, the failed ones,
how many were cleaned or forwarded and how many blocked, and the time, read from the
counters each pytest process wrote (tests/fuzz/stats.py).

Usage: fuzz_summary.py STATS_DIR WALL_SECONDS
"""

import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path


def _group(outcome: str) -> str:
    if outcome.startswith("FAILED"):
        return "failed"
    if outcome.startswith(("blocked", "refused")):
        return "blocked"
    if outcome.startswith("forwarded uninspected"):
        return "uninspected"
    if outcome.startswith(("cleaned", "forwarded")):
        return "passed on"
    return "other"


def main(folder: str, wall: int) -> None:
    counts: dict[str, Counter] = {}
    tests: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.json")):
        facts = json.loads(path.read_text())
        for prop, outcomes in facts["counts"].items():
            counts.setdefault(prop, Counter()).update(outcomes)
        tests.update(facts["tests"])
    seconds = Counter()
    failed_tests = [nodeid for nodeid, test in tests.items() if test["outcome"] == "failed"]
    passed = sum(test["outcome"] == "passed" for test in tests.values())
    for nodeid, test in tests.items():
        seconds[test["property"]] += test["seconds"]
    print(f"### Fuzzing: `scripts/fuzz` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(f"- Machine: {platform.machine()}, Python {platform.python_version()}; pytest -n 2; wall time {wall // 60} min {wall % 60} s")
    others = len(tests) - passed - len(failed_tests)
    print(f"- Tests: {passed} passed, {len(failed_tests)} failed" + (f" ({', '.join(failed_tests)})" if failed_tests else "") + (f", {others} expected to fail (xfail: known, unfixed)" if others else ""))
    print()
    print("| property | examples | failed | cleaned or forwarded clean | blocked or refused | forwarded uninspected (policy) |")
    print("|---|--:|--:|--:|--:|--:|")
    for prop, outcomes in sorted(counts.items()):
        groups = Counter()
        for outcome, number in outcomes.items():
            if outcome != "examples" and not outcome.startswith("note: "):
                groups[_group(outcome)] += number
        print(f"| {prop} | {outcomes['examples']:,} | {groups['failed']:,} | {groups['passed on']:,} | {groups['blocked']:,} | {groups['uninspected']:,} |")
    print("\nTime per test (seconds, summed over the two workers' share):\n")
    for name, total in sorted(seconds.items()):
        print(f"- {name}: {total:,.1f} s")
    print("\nOutcomes in detail:\n")
    for prop, outcomes in sorted(counts.items()):
        detail = ", ".join(f"{outcome} {number:,}" for outcome, number in outcomes.most_common() if outcome != "examples")
        print(f"- {prop}: {detail}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
