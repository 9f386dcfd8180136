"""Hypothesis profiles for the fuzz tests, chosen by VEIL_FUZZ_PROFILE.

ci (the default, what the suite runs): few examples, derandomized and without an example
database, so every CI run tries the same inputs and writes nothing to disk.
big (scripts/fuzz): 10,000 examples per core and envelope property and 2,000 through the
proxy, freshly random on each run.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,  # an example's time depends on the machine's load; checks.time_limit catches hangs
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,  # a failure prints the blob that replays it (@reproduce_failure)
)
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("big", derandomize=False, **_COMMON)
PROFILE = os.environ.get("VEIL_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "big"):
    raise RuntimeError(f"VEIL_FUZZ_PROFILE must be ci or big, not {PROFILE!r}")
settings.load_profile(PROFILE)

# Examples per property and profile. The ci numbers keep the whole package under a
# minute of wall time on two cores.
_BUDGETS = {
    "ci": {"core_strip": 1500, "core_mask": 200, "envelope": 600, "envelope_mask": 60, "addon": 200},
    "big": {"core_strip": 10_000, "core_mask": 10_000, "envelope": 10_000, "envelope_mask": 10_000, "addon": 2_000},
}


def examples(name: str) -> int:
    return _BUDGETS[PROFILE][name]
