"""Run the installed console scripts (or ``python -m``) in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def run_cli(
    module: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m MODULE ARGS`` and capture its output as text."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", module, *[str(a) for a in args]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def run_console_script(
    name: str, *args: str | os.PathLike[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script ``name`` (next to this Python) for real."""
    return subprocess.run(
        [str(Path(sys.executable).with_name(name)), *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
