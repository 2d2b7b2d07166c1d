"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from virnucpro_app.demo import make_demo_models

from .predict_support import make_input, run_predict


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo models built once, in a folder the commands use as their demo cache."""
    cache = tmp_path_factory.mktemp("demo-models")
    make_demo_models(cache)
    (cache / ".complete").write_text("built by the test\n")
    return cache


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six coding-rich contigs: 19 frames, 3 shards of ``predict_args``."""
    return make_input(tmp_path_factory.mktemp("input") / "contigs.fa")


@pytest.fixture(scope="session")
def reference(
    tmp_path_factory: pytest.TempPathFactory, sample: Path, demo_cache: Path
) -> Path:
    """One uninterrupted run of ``sample`` that other tests compare against."""
    output = tmp_path_factory.mktemp("reference") / "run"
    result = run_predict([sample], output, demo_cache)
    assert result.returncode == 0, result.stderr
    return output
