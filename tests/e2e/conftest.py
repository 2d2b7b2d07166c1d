"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from virnucpro_app.demo import make_demo_models


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo models built once, in a folder the commands use as their demo cache."""
    cache = tmp_path_factory.mktemp("demo-models")
    make_demo_models(cache)
    (cache / ".complete").write_text("built by the test\n")
    return cache
