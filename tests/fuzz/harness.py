"""Running every reader of ckptkit on one (damaged or crafted) file, under limits.

Each verb runs under a time limit and an address-space limit; its outcome is
"ok" (with what it returned), "refused" (a ``CheckpointError``, or a report that
says not ok), or a failure: a hang, an allocation far larger than the file, any
other exception (a traceback for the user).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import settings

import ckptkit
from ckptkit.cli import main

from ..support.limits import (
    CaseTimeoutError,
    is_allocation_failure,
    memory_limit,
    time_limit,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Each verb on each case: far more than files of a few KB need (on a busy
#: machine too); a hang fails the case.
CASE_LIMIT_S = 60
#: More than any case needs (its files are a few KB): an allocation beyond this
#: is "far larger than the file".
CASE_MEMORY_BYTES = 512 << 20
#: ``nox -s fuzz`` (HYPOTHESIS_PROFILE=fuzz) runs this many times the examples.
FUZZ_SCALE = 20


def fuzz_settings(examples: int) -> settings:
    """Settings for ``examples`` cases (FUZZ_SCALE times more under nox -s fuzz)."""
    scale = FUZZ_SCALE if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1
    return settings(max_examples=examples * scale, deadline=None)


class FuzzFailureError(AssertionError):
    """A verb broke the promise on a fuzzed file (the message says how)."""


@dataclass(frozen=True)
class Outcome:
    """What one verb did: ``kind`` "ok" (``value``) or "refused" (``reason``)."""

    kind: str
    value: Any = None
    reason: str = ""


def run_verb(name: str, call: Callable[[], Any]) -> Outcome:
    """Run one verb under the limits; raise FuzzFailureError if it broke the promise."""
    try:
        with time_limit(CASE_LIMIT_S), memory_limit(CASE_MEMORY_BYTES):
            value = call()
    except ckptkit.CheckpointError as error:
        if is_allocation_failure(error):
            msg = f"{name}: tried to allocate far more than the file: {error}"
            raise FuzzFailureError(msg) from error
        return Outcome("refused", reason=error.reason)
    except CaseTimeoutError as error:
        msg = f"{name}: hangs ({error})"
        raise FuzzFailureError(msg) from error
    except BaseException as error:
        what = "allocation" if is_allocation_failure(error) else "traceback"
        msg = f"{name}: {what}: {type(error).__name__}: {error}"
        raise FuzzFailureError(msg) from error
    return Outcome("ok", value=value)


def readers(path: Path) -> dict[str, Callable[[], Any]]:
    """Every public reader of one file, by name."""
    return {
        "load(verify=none)": lambda: ckptkit.load(path, verify="none"),
        "load(verify=quick)": lambda: ckptkit.load(path),
        "load(verify=full)": lambda: ckptkit.load(path, verify="full"),
        "load(mmap=True)": lambda: ckptkit.load(path, mmap=True, verify="full"),
        "inspect": lambda: ckptkit.inspect(path),
        "validate(quick)": lambda: _report(ckptkit.validate(path, level="quick")),
        "validate(full)": lambda: _report(ckptkit.validate(path, level="full")),
        "validate_tree": lambda: _tree(ckptkit.validate_tree([path])),
        "validate_tree(folder)": lambda: _walked(ckptkit.validate_tree([path.parent])),
    }


def _walked(tree: ckptkit.TreeReport) -> ckptkit.TreeReport:
    """A folder walk classifies by content: a file may be "not a checkpoint"."""
    if tree.errors:
        msg = f"validate_tree could not read a place: {tree.errors}"
        raise FuzzFailureError(msg)
    return tree


def _report(report: ckptkit.ValidationReport) -> ckptkit.ValidationReport:
    if not report.ok:
        raise _Refused(report.reason)
    return report


def _tree(tree: ckptkit.TreeReport) -> ckptkit.TreeReport:
    if tree.errors:
        msg = f"validate_tree could not read a place: {tree.errors}"
        raise FuzzFailureError(msg)
    problems = [r.reason for r in tree.reports if not r.ok]
    if problems:
        raise _Refused(problems[0])
    return tree


class _Refused(ckptkit.CheckpointError):
    """A report that says not ok (validate never raises): the file was refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


#: The readers that take different paths through a legacy file (the load
#: variants all read a pickle the same way).
LEGACY_READERS = ("load(verify=quick)", "inspect", "validate(full)", "validate_tree")


def run_readers(path: Path, only: tuple[str, ...] | None = None) -> dict[str, Outcome]:
    """Every reader (or ``only`` those) on ``path``; the promise checked for each."""
    return {
        name: run_verb(name, call)
        for name, call in readers(path).items()
        if only is None or name in only
    }


def check_agreement(outcomes: dict[str, Outcome]) -> None:
    """Readers that read the same bytes must agree on whether the file is good."""
    full = ("load(verify=full)", "load(mmap=True)", "validate(full)", "validate_tree")
    verdicts = {name: outcomes[name].kind for name in full}
    if len(set(verdicts.values())) != 1:
        msg = f"full readers disagree: {verdicts}: " + "; ".join(
            f"{n}: {o.reason}" for n, o in outcomes.items() if o.reason
        )
        raise FuzzFailureError(msg)
    if outcomes["validate(quick)"].kind == "ok" and outcomes["inspect"].kind != "ok":
        msg = f"validate(quick) passes but inspect refuses: {outcomes['inspect']}"
        raise FuzzFailureError(msg)


@contextlib.contextmanager
def one_file(data: bytes, name: str = "model.ckpt") -> Iterator[Path]:
    """``data`` as the only file of a fresh folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def run_cli(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    """The console script's entry point in this process: (exit code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["ckptkit", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                with time_limit(CASE_LIMIT_S), memory_limit(CASE_MEMORY_BYTES):
                    main()
            except SystemExit as stop:
                code = stop.code
            else:  # pragma: no cover - main always exits
                code = 0
    except CaseTimeoutError as error:
        msg = f"ckptkit {' '.join(sys.argv[1:])}: hangs ({error})"
        raise FuzzFailureError(msg) from error
    finally:
        sys.argv = argv
    return int(code or 0), out.getvalue(), err.getvalue()


_FAILED_LABELS = ("CORRUPTED", "INCOMPATIBLE", "MISSING")


def check_cli(path: Path) -> None:
    """``inspect`` and ``validate`` on a bad file: exit 3, one line naming it."""
    code, out, err = run_cli("inspect", path)
    if code != 0:
        lines = err.strip().splitlines()
        if code != 3 or len(lines) != 1 or str(path) not in lines[0]:
            msg = f"ckptkit inspect: exit {code}, stderr {err!r}"
            raise FuzzFailureError(msg)
    code, out, err = run_cli("validate", "--no-ledger", "--no-progress", path)
    if "Traceback" in err or code not in (0, 3):
        msg = f"ckptkit validate: exit {code}, stderr {err!r}"
        raise FuzzFailureError(msg)
    if code == 3 and not any(
        line.startswith(_FAILED_LABELS) and str(path) in line
        for line in out.splitlines()
    ):
        msg = f"ckptkit validate: exit 3 without a line naming {path}: {out!r}"
        raise FuzzFailureError(msg)
