# /// script
# dependencies = ["nox>=2024.4.15"]
# ///
"""Sessions for ckptkit and virnucpro-app: tests, lint, typecheck, demo, bench, docs."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
# pip, not uv: pip finds the CPU torch build that lies on this machine's disk
# (find-links), uv would download a multi-GB CUDA build.
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# Installed before the project so that its plain `torch` requirement is already
# met: a bare `torch` from PyPI is the CUDA build (several GB). Users who
# `pip install .` themselves still get whatever torch suits their machine.
TORCH_CPU = "torch==2.13.0"


def _install(session: nox.Session, *groups: str) -> None:
    session.install(TORCH_CPU)
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    session.install("-e", ".", *requirements)


def _run_suite(session: nox.Session, *options: str) -> None:
    session.run(
        "pytest",
        "--numprocesses=auto",
        "--dist=loadfile",  # a file's module fixtures (demo runs) are built once
        *options,
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "ci"},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (the README's test command)."""
    _install(session, "test")
    _run_suite(session)
    # Every example in the public docstrings runs too.
    session.run("pytest", "--doctest-modules", "src", "-p", "no:cacheprovider")


# `nox -s fuzz` runs tests/fuzz with FUZZ_SCALE (tests/fuzz/harness.py) times the
# examples of the test suite: 20 x 255 = 5,100 hypothesis examples, plus the
# regression tests.
@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Run the fuzzers of tests/fuzz with 20 times the examples of `tests`."""
    _install(session, "test")
    session.run(
        "pytest",
        "tests/fuzz",
        "--numprocesses=auto",
        "--timeout=7200",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "fuzz"},
    )


@nox.session
def coverage(session: nox.Session) -> None:
    """Run the test suite with line and branch coverage (about 12% slower)."""
    _install(session, "test")
    _run_suite(session, "--cov", "--cov-report=term:skip-covered")


@nox.session
def lint(session: nox.Session) -> None:
    """Check style with ruff (lint and format)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", "src", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on src/."""
    _install(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run `virnucpro-app predict` on the bundled sample with the demo models."""
    _install(session)
    session.run(
        "virnucpro-app",
        "predict",
        "--demo",
        "--force",
        "--output-dir",
        "demo-output",
        *session.posargs,
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmark scripts under bench/ and print their figures."""
    _install(session)
    scripts = session.posargs or sorted(map(str, Path("bench").glob("bench_*.py")))
    for script in scripts:
        session.run("python", script)
