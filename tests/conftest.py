"""Shared pytest configuration: hypothesis profiles, markers by folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    print_blob=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_MARKER_BY_FOLDER = {
    "unit": "unit",
    "property": "property",
    "stateful": "stateful",
    "integration": "integration",
    "e2e": "e2e",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the kind named by its folder."""
    for item in items:
        for part in Path(str(item.fspath)).parts:
            marker = _MARKER_BY_FOLDER.get(part)
            if marker is not None:
                item.add_marker(getattr(pytest.mark, marker))
                break
