"""Shared pytest configuration: hypothesis profiles, markers by folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs the same examples every time (derandomize: seeded from each test's
# source), so a red CI always means a change broke something; new examples are
# explored by `dev` runs and by `nox -s fuzz`, which draw fresh ones each run.
settings.register_profile(
    "ci",
    deadline=None,
    print_blob=True,
    max_examples=60,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30)
# nox -s fuzz: the ci profile with fresh examples; the fuzzers scale their counts.
settings.register_profile("fuzz", parent=settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_MARKER_BY_FOLDER = {
    "unit": "unit",
    "property": "property",
    "stateful": "stateful",
    "integration": "integration",
    "e2e": "e2e",
    "faults": "faults",
    "fuzz": "fuzz",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the kind named by its folder."""
    for item in items:
        for part in Path(str(item.fspath)).parts:
            marker = _MARKER_BY_FOLDER.get(part)
            if marker is not None:
                item.add_marker(getattr(pytest.mark, marker))
                break


# Suites that run many cases in one test record them as a user property
# ``cases:<suite>`` (``record_property``); the totals are printed at the end, also
# under xdist (the controller receives the workers' reports).
_CASES_PREFIX = "cases:"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many cases each many-case suite ran (fault injection, fuzz, ...)."""
    totals: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        for name, value in getattr(report, "user_properties", ()):
            if isinstance(name, str) and name.startswith(_CASES_PREFIX):
                suite = name.removeprefix(_CASES_PREFIX)
                totals[suite] = totals.get(suite, 0) + int(value)
    if totals:
        terminalreporter.section("cases run")
        for suite, count in sorted(totals.items()):
            terminalreporter.write_line(f"{suite}: {count} cases")
