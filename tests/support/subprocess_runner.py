"""Run the installed console scripts (or ``python -m``) in a real subprocess.

Each run is a process of its own: its exit status, its standard streams, its
files and locks are its own, exactly as when a person types the command. What
changes is how the process starts. Every run of a fresh interpreter pays the
import of torch (3 s on the CI machine, 8 s under load), so by default a run is
forked from a *warm* server process (``multiprocessing``'s forkserver) that
imported torch, ckptkit and the app once and never runs anything else: the
child then executes the real console script file (``runpy.run_path``) or the
module's ``__main__`` (``runpy.run_module``, as ``python -m`` does), with the
run's working folder, environment and argument list.

A run goes to a fresh interpreter instead (``subprocess``) when its environment
sets a variable that is read at import time (any not in :data:`_WARM_SAFE_ENV`),
and always when ``TESTS_COLD_PROCESSES=1``: that runs the whole suite with one
exec per command, as CI did before. Kill and crash tests start their processes
with ``subprocess`` themselves and are not affected.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Variables the code under test reads when it runs, never at import: a warm
#: child that sets them behaves as a fresh interpreter would.
_WARM_SAFE_ENV = frozenset(
    {
        "COLUMNS",
        "OMP_NUM_THREADS",  # applied with torch.set_num_threads in the child
        "OUT",
        "PYTHONUNBUFFERED",
        "TORCH_HOME",
    }
)
_WARM_SAFE_PREFIXES = ("VIRNUCPRO_",)
#: What the server imports once (heavy modules the commands import lazily).
_PRELOAD = [
    "torch",
    "numpy",
    "safetensors.torch",
    "ckptkit",
    "ckptkit.cli",
    "virnucpro_app.cli",
    "virnucpro_app.predict.launch",
    "virnucpro_app.predict.run",
    "virnucpro_app.models.dnabert",
    "virnucpro_app.models.esm2",
    "virnucpro_app.training.loop",
    __name__,
]
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(_PRELOAD)


def run_cli(
    module: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m MODULE ARGS`` and capture its output as text."""
    return _run(("module", module), args, cwd=cwd, env=env, timeout_s=timeout_s)


def run_console_script(
    name: str,
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script ``name`` (next to this Python) for real."""
    script = str(Path(sys.executable).with_name(name))
    return _run(("script", script), args, cwd=cwd, env=env, timeout_s=timeout_s)


def _run(
    target: tuple[str, str],
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    timeout_s: float,
) -> subprocess.CompletedProcess[str]:
    extra = dict(env or {})
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    argv = [str(a) for a in args]
    if _warm_allowed(extra):
        return _run_warm(target, argv, cwd=cwd, env=full_env, timeout_s=timeout_s)
    kind, name = target
    command = [sys.executable, "-m", name] if kind == "module" else [name]
    return subprocess.run(
        [*command, *argv],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _warm_allowed(extra_env: Mapping[str, str]) -> bool:
    if os.environ.get("TESTS_COLD_PROCESSES") == "1":
        return False
    return all(
        key in _WARM_SAFE_ENV or key.startswith(_WARM_SAFE_PREFIXES)
        for key in extra_env
    )


def _run_warm(
    target: tuple[str, str],
    argv: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str],
    timeout_s: float,
) -> subprocess.CompletedProcess[str]:
    kind, name = target
    shown = [sys.executable, "-m", name, *argv] if kind == "module" else [name, *argv]
    with tempfile.TemporaryDirectory(prefix="warm-run-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        command = _Command(target, argv, None if cwd is None else str(cwd), env)
        child = _context.Process(target=_child_main, args=(command, out, err))
        child.start()
        child.join(timeout_s)
        if child.is_alive():
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(shown, timeout_s)
        assert child.exitcode is not None
        # A child killed by a signal reads as -signal, as subprocess reports it.
        return subprocess.CompletedProcess(
            shown,
            child.exitcode,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
        )


@dataclass(frozen=True)
class _Command:
    """What a warm child runs: ``("module" | "script", name)``, its argv and setting."""

    target: tuple[str, str]
    argv: list[str]
    cwd: str | None
    env: dict[str, str]


def _child_main(command: _Command, out: Path, err: Path) -> None:
    """The forked child: become the command, then exit as its interpreter would."""
    os.environ.clear()
    os.environ.update(command.env)
    if command.cwd is not None:
        os.chdir(command.cwd)
    threads = command.env.get("OMP_NUM_THREADS")
    if threads:  # libgomp read the variable when the server started
        import torch

        torch.set_num_threads(int(threads))
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
    )
    kind, name = command.target
    sys.argv = [name, *command.argv]  # run_module sets argv[0] to the module's file
    code = 0
    try:
        if kind == "module":
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(name, run_name="__main__")
    except SystemExit as stop:
        code = _exit_status(stop)
    except BaseException:  # noqa: BLE001 - the interpreter prints it and exits 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_status(stop: SystemExit) -> int:
    """The status a fresh interpreter exits with for ``SystemExit(stop.code)``."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    print(stop.code, file=sys.stderr)
    return 1
