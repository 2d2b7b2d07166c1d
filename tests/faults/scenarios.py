"""The calls fault injection tries, each with the promise it must keep.

A :class:`Scenario` builds a folder (``setup``), runs one public call on it
(``action``, the part whose file operations are failed) and checks the folder
afterwards (``check``). Every check is black-box: public API and the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import ckptkit
from ckptkit._file.format import parse_temp_name, step_name, temp_name

from ..support.checkpoint_zoo import DEAD_PID

if TYPE_CHECKING:
    from collections.abc import Callable

    from .seam import Injector

SCHEMA = "faults"


def old_state() -> dict[str, Any]:
    """What the folder holds before the call."""
    return {"w": torch.arange(16.0).reshape(4, 4), "b": torch.arange(8), "step": 1}


def new_state() -> dict[str, Any]:
    """What the call writes."""
    return {"w": torch.full((4, 4), 2.5), "b": torch.arange(8) * 3, "step": 2}


def same_state(first: object, second: object) -> bool:
    """Exact equality of two states: same types all the way down; tensors and
    numpy arrays by dtype, shape and values."""
    if type(first) is not type(second):
        return False
    if isinstance(first, torch.Tensor):
        assert isinstance(second, torch.Tensor)
        return first.dtype == second.dtype and torch.equal(first, second)
    if isinstance(first, np.ndarray):
        return first.dtype == second.dtype and np.array_equal(first, second)  # type: ignore[union-attr]
    if isinstance(first, dict):
        assert isinstance(second, dict)
        return list(first) == list(second) and all(
            same_state(first[k], second[k]) for k in first
        )
    if isinstance(first, list | tuple):
        assert isinstance(second, list | tuple)
        return len(first) == len(second) and all(
            same_state(a, b) for a, b in zip(first, second, strict=True)
        )
    return bool(first == second)


def registry() -> ckptkit.MigrationRegistry:
    """A schema with one step, 1.0 -> 1.1 (adds ``epoch``)."""
    steps = ckptkit.MigrationRegistry(schema=SCHEMA, current="1.1")

    @steps.migration("1.0", "1.1")
    def add_epoch(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "epoch": 7}

    return steps


@dataclass
class Case:
    """One folder, what was in it, and what the call under test should write."""

    folder: Path
    target: Path
    before: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def bytes_of(self, name: str) -> bytes | None:
        path = self.folder / name
        return path.read_bytes() if path.exists() else None


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if parse_temp_name(p.name) is not None]


class PromiseBrokenError(AssertionError):
    """A check found the promise broken (the message says how)."""


def expect(condition: bool, message: str) -> None:
    """Raise :class:`PromiseBrokenError` with ``message`` unless ``condition``."""
    if not condition:
        raise PromiseBrokenError(message)


def _check_error(error: BaseException | None) -> None:
    expect(
        error is None or isinstance(error, ckptkit.CheckpointError | OSError),
        f"undocumented error {type(error).__name__}: {error}",
    )


def _hit(injector: Injector) -> str:
    return "" if injector.hit is None else injector.hit.name


def _check_no_temp(
    case: Case, injector: Injector, *, own: set[str], strict: bool = True
) -> None:
    """No temporary file left (unless removing it failed); ``cleanup`` removes it.

    ``strict``: a writer's own temporary file may be left only when its removal
    is what failed.
    """
    left = [p for p in _temp_files(case.folder) if p.name not in own]
    if left:
        expect(
            not strict or _hit(injector) == "unlink",
            f"temporary file left although no removal failed: {left[0].name}",
        )
        case.notes.append("temp left, removed by cleanup")
        ckptkit.cleanup(case.folder)
        still = [p.name for p in _temp_files(case.folder) if p.name not in own]
        expect(not still, f"temporary files cleanup did not remove: {still}")


def _check_ledger(case: Case) -> None:
    ledger = ckptkit.FailureLedger(case.folder).path
    if ledger.exists():
        data = ledger.read_bytes()
        expect(not data or data.endswith(b"\n"), "ledger ends inside a line")
        expect(
            not ckptkit.FailureLedger(case.folder).malformed, "ledger has torn lines"
        )


def _load(path: Path) -> ckptkit.Checkpoint:
    return ckptkit.load(path, verify="full")


def _check_old_or_new(
    case: Case, injector: Injector, error: BaseException | None
) -> None:
    """The target is the old file byte for byte, or (once renamed) the new one."""
    name = case.target.name
    now = case.bytes_of(name)
    if error is None or injector.replaced(case.target):
        expect(now is not None, f"{name} is gone")
        loaded = _load(case.target).state
        expect(same_state(loaded, new_state()), f"{name} does not hold the new state")
    else:
        expect(now == case.before[name], f"{name} changed though the write failed")


@dataclass(frozen=True)
class Scenario:
    """One public call under faults.

    Attributes:
        name: Its name in test ids.
        setup: Builds the folder; returns the case.
        action: The call (its file operations are the ones failed).
        check: Asserts the promise after the call (raises PromiseBrokenError).
        operations: Operations the recorded run must contain (a check on the
            recording itself).
    """

    name: str
    setup: Callable[[Path], Case]
    action: Callable[[Case], object]
    check: Callable[[Case, Injector, BaseException | None], None]
    operations: frozenset[str]


# --- save ----------------------------------------------------------------------


def _setup_save(folder: Path) -> Case:
    target = folder / "model.ckpt"
    ckptkit.save(target, old_state())
    return Case(folder, target, _snapshot(folder))


def _check_save(case: Case, injector: Injector, error: BaseException | None) -> None:
    _check_error(error)
    _check_old_or_new(case, injector, error)
    _check_no_temp(case, injector, own=set())


# --- CheckpointManager.save ------------------------------------------------------


def _setup_manager(folder: Path) -> Case:
    with ckptkit.CheckpointManager(folder) as manager:
        manager.save(1, old_state())
    return Case(folder, folder / step_name(1), _snapshot(folder))


def _resave(async_save: bool) -> Callable[[Case], object]:
    def action(case: Case) -> None:
        with ckptkit.CheckpointManager(case.folder, async_save=async_save) as manager:
            manager.save(1, new_state())

    return action


def _next_step(async_save: bool) -> Callable[[Case], object]:
    """Step 2 with keep_last=1: step 1 may go only once step 2 is safe."""

    def action(case: Case) -> None:
        with ckptkit.CheckpointManager(
            case.folder, keep_last=1, async_save=async_save
        ) as manager:
            manager.save(2, new_state())

    return action


def _restored(case: Case) -> object:
    with ckptkit.CheckpointManager(case.folder) as manager:
        return manager.restore().state


def _check_resave(case: Case, injector: Injector, error: BaseException | None) -> None:
    _check_error(error)
    _check_old_or_new(case, injector, error)
    _check_no_temp(case, injector, own=set())
    _check_ledger(case)
    state = _restored(case)
    expect(
        same_state(state, old_state()) or same_state(state, new_state()),
        "restore() gives neither the old nor the new state",
    )


def _check_next_step(
    case: Case, injector: Injector, error: BaseException | None
) -> None:
    _check_error(error)
    first, second = case.folder / step_name(1), case.folder / step_name(2)
    expect(first.exists() or second.exists(), "both steps are gone")
    if first.exists():
        expect(first.read_bytes() == case.before[first.name], "step 1 changed")
    if second.exists():
        expect(same_state(_load(second).state, new_state()), "step 2 is not whole")
    elif error is None:
        raise PromiseBrokenError("save returned but step 2 is missing")
    _check_no_temp(case, injector, own=set())
    _check_ledger(case)
    state = _restored(case)
    expect(
        same_state(state, old_state()) or same_state(state, new_state()),
        "restore() gives neither step",
    )


# --- migrate ---------------------------------------------------------------------


def _setup_migrate(folder: Path) -> Case:
    target = folder / "model.ckpt"
    ckptkit.save(target, old_state(), schema=SCHEMA)
    return Case(folder, target, _snapshot(folder))


def _migrate(backup: bool) -> Callable[[Case], object]:
    def action(case: Case) -> object:
        return ckptkit.migrate(case.target, registry(), backup=backup)

    return action


def _check_migrate(
    backup: bool,
) -> Callable[[Case, Injector, BaseException | None], None]:
    def check(case: Case, injector: Injector, error: BaseException | None) -> None:
        _check_error(error)
        name = case.target.name
        now = case.bytes_of(name)
        saved = case.bytes_of(f"{name}.v1.0.bak")
        expect(now is not None, f"{name} is gone")
        if now == case.before[name]:
            if saved is not None:
                # Only when removing it failed (it is an identical copy then).
                expect(
                    _hit(injector) == "unlink",
                    "a backup was left although removing it did not fail",
                )
                case.notes.append("identical backup left")
                expect(saved == now, "a backup differs from the original")
        else:
            info = ckptkit.inspect(case.target)
            expect(info.version == "1.1", "the target is neither old nor migrated")
            state = _load(case.target).state
            expect(
                same_state(state, {**old_state(), "epoch": 7}),
                "the migrated target does not hold the migrated state",
            )
            if backup:
                expect(saved == case.before[name], "the original was not kept")
        if error is None:
            expect(now != case.before[name], "migrate returned but nothing changed")
        _check_no_temp(case, injector, own=set())

    return check


# --- FailureLedger.record ---------------------------------------------------------


def _setup_ledger(folder: Path) -> Case:
    ledger = ckptkit.FailureLedger(folder)
    ledger.record("a.ckpt", "first | failure")
    return Case(folder, ledger.path, _snapshot(folder))


def _record(case: Case) -> object:
    return ckptkit.FailureLedger(case.folder).record("b.ckpt", "second\nfailure")


def _check_record(case: Case, _injector: Injector, error: BaseException | None) -> None:
    expect(
        error is None or isinstance(error, OSError),
        f"undocumented error {type(error).__name__}: {error}",
    )
    _check_ledger(case)
    entries = [(e.path, e.reason) for e in ckptkit.FailureLedger(case.folder).entries()]
    first = ("a.ckpt", "first | failure")
    expect(
        entries in ([first], [first, ("b.ckpt", "second\nfailure")]),
        f"ledger holds {entries}",
    )
    if error is None:
        expect(len(entries) == 2, "record returned but wrote no line")


# --- cleanup -------------------------------------------------------------------


def _setup_cleanup(folder: Path) -> Case:
    target = folder / "model.ckpt"
    ckptkit.save(target, old_state())
    stale = folder / temp_name("model.ckpt", "0123456789ab", DEAD_PID)
    stale.write_bytes(b"partial")
    live = folder / temp_name("model.ckpt", "ba9876543210", os.getppid())
    live.write_bytes(b"in flight")
    return Case(folder, target, _snapshot(folder))


def _cleanup(case: Case) -> object:
    return ckptkit.cleanup(case.folder)


def _check_cleanup(case: Case, injector: Injector, error: BaseException | None) -> None:
    _check_error(error)
    live = temp_name("model.ckpt", "ba9876543210", os.getppid())
    for name in (case.target.name, live):
        expect(case.bytes_of(name) == case.before[name], f"{name} was touched")
    _check_no_temp(case, injector, own={live}, strict=error is None)


SCENARIOS = (
    Scenario(
        "save",
        _setup_save,
        lambda case: ckptkit.save(case.target, new_state()),
        _check_save,
        frozenset(
            {"open_new", "write", "fsync", "close", "replace", "fsync_directory"}
        ),
    ),
    *(
        Scenario(
            f"manager-{what}{'-async' if async_save else ''}",
            _setup_manager,
            action(async_save=async_save),
            check,
            frozenset({"write", "replace", *operations}),
        )
        for what, action, check, operations in (
            ("resave", _resave, _check_resave, ("read_into", "list_files")),
            ("retention", _next_step, _check_next_step, ("unlink", "fsync_directory")),
        )
        for async_save in (False, True)
    ),
    Scenario(
        "migrate-backup",
        _setup_migrate,
        _migrate(backup=True),
        _check_migrate(backup=True),
        frozenset({"link", "fsync_directory", "write", "replace"}),
    ),
    Scenario(
        "migrate-no-backup",
        _setup_migrate,
        _migrate(backup=False),
        _check_migrate(backup=False),
        frozenset({"write", "replace", "read_into"}),
    ),
    Scenario(
        "ledger-record",
        _setup_ledger,
        _record,
        _check_record,
        frozenset({"open_append", "lock", "write", "fsync", "close"}),
    ),
    Scenario(
        "cleanup",
        _setup_cleanup,
        _cleanup,
        _check_cleanup,
        frozenset({"list_files", "unlink"}),
    ),
)
