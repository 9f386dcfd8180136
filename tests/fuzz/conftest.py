"""Loads the hypothesis profile before any fuzz test is collected, and feeds
scripts/fuzz's summary table (stats.py)."""

import os

import pytest

from . import profiles, stats  # noqa: F401 - importing profiles loads the chosen profile


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        stats.test_finished(report.nodeid.split("::")[-1], report.nodeid, report.outcome, report.duration)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    stats.write(os.environ.get("PYTEST_XDIST_WORKER", "main"))
