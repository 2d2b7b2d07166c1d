"""Power cuts at every moment of a save and of a migrate (crash-consistency).

A save over an existing checkpoint and an in-place migrate with a backup are
recorded as file effects; for every prefix of them, every disk a power cut may
leave (see power_cut.py for the rules) is built, and on each: the target holds
the old checkpoint or the new one, whole; loading it gives that state (never an
error, never another state); a migrated target always has its original in the
backup; and once the call returned, every image holds the new file.

The last tests check the model itself: a writer that skips an fsync is caught.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import ckptkit
from ckptkit._file import fs

from .power_cut import images_at_every_moment, recorded_effects
from .scenarios import SCHEMA, new_state, old_state, registry, same_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _verdict(content: bytes, states: dict[str, Any]) -> str:
    """Which state loading ``content`` gives ("old"/"new"), "error", or "WRONG"."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.ckpt"
        path.write_bytes(content)
        try:
            loaded = ckptkit.load(path, verify="full").state
        except ckptkit.CheckpointError:
            return "error"
    return next((k for k, v in states.items() if same_state(loaded, v)), "WRONG")


def _save_problems(
    before: dict[str, bytes], effects: list[Any], name: str, new: bytes
) -> tuple[list[str], int]:
    old = before[name]
    states = {"old": old_state(), "new": new_state()}
    problems: list[str] = []
    verdicts: dict[bytes, str] = {old: "old", new: "new"}
    images = 0
    for moment, disks, found in images_at_every_moment(before, effects, [name]):
        images += disks
        for (content,) in found:
            if content is None:
                problems.append(f"after {moment} effects: {name} is gone")
                continue
            if content not in verdicts:
                verdicts[content] = _verdict(content, states)
            verdict = verdicts[content]
            if verdict not in ("old", "new"):
                problems.append(f"after {moment} effects: loading gives {verdict}")
            if moment == len(effects) and verdict != "new":
                problems.append(f"save returned, yet a power cut leaves {verdict}")
    return problems, images


def _record_save(
    folder: Path, broken: dict[str, Callable[..., None]] | None = None
) -> tuple[dict[str, bytes], list[Any], bytes]:
    """Save over an old checkpoint, recording (``broken``: seam functions replaced)."""
    target = folder / "model.ckpt"
    ckptkit.save(target, old_state())
    before = _snapshot(folder)
    with recorded_effects() as effects, _replaced(broken or {}):
        ckptkit.save(target, new_state())
    return before, effects, target.read_bytes()


@contextlib.contextmanager
def _replaced(functions: dict[str, Callable[..., None]]) -> Iterator[None]:
    saved = {name: getattr(fs, name) for name in functions}
    for name, function in functions.items():
        setattr(fs, name, function)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(fs, name, function)


def test_save_leaves_the_old_or_the_new_checkpoint_at_every_moment(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    before, effects, new = _record_save(tmp_path)
    assert [e[0] for e in effects].count("fsync_dir") == 1
    problems, images = _save_problems(before, effects, "model.ckpt", new)
    record_property("cases:power cut", images)
    assert problems == []


def _migrate_problems(
    before: dict[str, bytes], effects: list[Any], after: dict[str, bytes]
) -> tuple[list[str], int]:
    name, backup = "model.ckpt", "model.ckpt.v1.0.bak"
    old, new = before[name], after[name]
    problems: list[str] = []
    images = 0
    for moment, disks, found in images_at_every_moment(before, effects, [name, backup]):
        images += disks
        for content, kept in found:
            where = f"after {moment} effects"
            if content not in (old, new):
                problems.append(f"{where}: {name} is neither old nor migrated")
            if content == new and kept != old:
                problems.append(f"{where}: migrated, but the original is not kept")
            if moment == len(effects) and (content, kept) != (new, old):
                problems.append(f"{where}: migrate returned, yet a cut undoes it")
    for content in {old, new}:
        verdict = _verdict(content, {"old": old_state(), "new": migrated_state()})
        if verdict not in ("old", "new"):
            problems.append(f"a whole file loads as {verdict}")
    return problems, images


def migrated_state() -> dict[str, Any]:
    """What the scenario's registry makes of the old state."""
    return {**old_state(), "epoch": 7}


def _record_migrate(
    folder: Path, broken: dict[str, Callable[..., None]] | None = None
) -> tuple[dict[str, bytes], list[Any], dict[str, bytes]]:
    target = folder / "model.ckpt"
    ckptkit.save(target, old_state(), schema=SCHEMA)
    before = _snapshot(folder)
    with recorded_effects() as effects, _replaced(broken or {}):
        ckptkit.migrate(target, registry())
    return before, effects, _snapshot(folder)


def test_migrate_keeps_the_original_or_the_migrated_file_at_every_moment(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    before, effects, after = _record_migrate(tmp_path)
    assert "link" in [e[0] for e in effects]
    problems, images = _migrate_problems(before, effects, after)
    record_property("cases:power cut", images)
    assert problems == []


# --- the model catches broken writers ------------------------------------------


def _skipping(name: str, calls: set[int]) -> Callable[..., None]:
    """A replacement of ``fs.<name>`` that does nothing on the given calls."""
    real = getattr(fs, name)
    seen = 0

    def call(*args: Any, **kwargs: Any) -> None:
        nonlocal seen
        seen += 1
        if seen not in calls:
            real(*args, **kwargs)

    return call


@pytest.mark.parametrize(
    ("skipped", "found"),
    [
        ("fsync", "loading gives error"),  # renames data that may not be there
        ("fsync_directory", "save returned, yet a power cut leaves old"),
    ],
)
def test_power_cut_model_catches_a_save_without_one_of_its_fsyncs(
    tmp_path: Path, skipped: str, found: str
) -> None:
    before, effects, new = _record_save(tmp_path, {skipped: _skipping(skipped, {1})})
    problems, _ = _save_problems(before, effects, "model.ckpt", new)
    assert any(found in p for p in problems)


def test_power_cut_model_catches_a_backup_that_is_not_durable_first(
    tmp_path: Path,
) -> None:
    broken = {"fsync_directory": _skipping("fsync_directory", {1})}
    before, effects, after = _record_migrate(tmp_path, broken)
    problems, _ = _migrate_problems(before, effects, after)
    assert any("the original is not kept" in p for p in problems)
