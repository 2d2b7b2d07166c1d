"""The commit protocol of sharded checkpoints: every crash window, and recovery."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ckptkit
import ckptkit.distributed as ckd
from ckptkit._file import fs
from ckptkit._file.sharded import aside_name, staging_name, trash_name
from ckptkit.cli import app
from ckptkit.distributed import _commit

from ...support.checkpoint_zoo import DEAD_PID
from ...support.corrupt import flip_bit


def _saved(folder: Path, value: float) -> Path:
    ckd.save(folder, {"w": torch.full((4,), value), "value": value})
    return folder


def _value(path: Path) -> float:
    value: float = ckptkit.load(path, verify="full").state["value"]
    return value


def _staging(tmp_path: Path, value: float, pid: int = DEAD_PID) -> Path:
    """A complete staging folder of a save to ``tmp_path / 'ck'``."""
    folder = tmp_path / staging_name("ck", "0123456789ab", pid)
    _saved(tmp_path / "scratch", value).rename(folder)
    return folder


def _aside(tmp_path: Path, value: float) -> Path:
    folder = tmp_path / aside_name("ck", "0123456789ab", DEAD_PID)
    _saved(tmp_path / "scratch", value).rename(folder)
    return folder


class _Crash(BaseException):
    """The process dies here."""


#: The file operations of a commit that replaces a checkpoint, in order.
COMMIT_STEPS = (
    "fsync staging",
    "rename old aside",
    "rename staging to path",
    "fsync parent",
    "remove aside",
    "fsync parent again",
)


@pytest.mark.parametrize("crash_at", range(len(COMMIT_STEPS)), ids=COMMIT_STEPS)
def test_a_crash_at_any_commit_step_leaves_old_or_new_after_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """Replace an old checkpoint; die just before one of the commit's steps."""
    _saved(tmp_path / "ck", 1.0)
    staging = _staging(tmp_path, 2.0, pid=os.getpid())
    steps = iter(range(len(COMMIT_STEPS)))

    def step(real: object) -> object:
        def run(*args: object) -> object:
            if next(steps) == crash_at:
                raise _Crash
            return real(*args)  # type: ignore[operator]

        return run

    monkeypatch.setattr(fs, "replace", step(fs.replace))
    monkeypatch.setattr(fs, "fsync_directory", step(fs.fsync_directory))
    monkeypatch.setattr(fs, "remove_tree", step(fs.remove_tree))
    with pytest.raises(_Crash):
        _commit.commit(staging, tmp_path / "ck", "0123456789ab")
    monkeypatch.undo()
    for work in tmp_path.iterdir():  # the crashed writer is dead: give its pid away
        if work.name.startswith("."):
            work.rename(tmp_path / work.name.replace(str(os.getpid()), str(DEAD_PID)))
    ckptkit.cleanup(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    # Before the old one moved aside: the old one stays; after: the new one won.
    assert _value(tmp_path / "ck") == (1.0 if crash_at <= 1 else 2.0)


def test_recovery_of_each_state_a_crash_can_leave(tmp_path: Path) -> None:
    cases = {}
    for name in ("present", "promote", "restore", "aside", "trash"):
        (tmp_path / name).mkdir()
        cases[name] = tmp_path / name
    _saved(cases["present"] / "ck", 1.0)
    _staging(cases["present"], 2.0)  # path still there: the new one never replaced it
    _staging(cases["promote"], 2.0)
    _aside(cases["promote"], 1.0)
    incomplete = _staging(cases["restore"], 2.0)
    (incomplete / "ckptkit-sharded.json").unlink()  # the index is written last
    _aside(cases["restore"], 1.0)
    _saved(cases["aside"] / "ck", 2.0)
    _aside(cases["aside"], 1.0)
    _saved(cases["trash"] / "ck", 1.0)
    _saved(cases["trash"] / "scratch", 0.0).rename(
        cases["trash"] / trash_name("old", "0123456789ab", DEAD_PID)
    )
    expected = {
        "present": 1.0,
        "promote": 2.0,
        "restore": 1.0,
        "aside": 2.0,
        "trash": 1.0,
    }
    for name, folder in cases.items():
        ckptkit.cleanup(folder)
        assert [p.name for p in folder.iterdir()] == ["ck"], name
        assert _value(folder / "ck") == expected[name], name


def test_a_missing_checkpoint_with_a_pending_recovery_says_how_to_restore(
    tmp_path: Path,
) -> None:
    _staging(tmp_path, 2.0)
    aside = _aside(tmp_path, 1.0)
    for call in (ckptkit.load, ckptkit.inspect):
        with pytest.raises(ckptkit.CheckpointNotFoundError, match="ckptkit cleanup"):
            call(tmp_path / "ck")
    report = ckptkit.validate(tmp_path / "ck")
    assert report.kind == "missing"
    assert "interrupted while replacing it" in report.reason
    with pytest.raises(ckptkit.CheckpointNotFoundError, match="ckptkit cleanup"):
        ckd.load(tmp_path / "ck", {"w": torch.zeros(4)})
    with pytest.raises(ckptkit.CheckpointNotFoundError):
        ckptkit.load(aside)  # a work folder is never a checkpoint


def test_a_writer_still_running_is_left_alone(tmp_path: Path) -> None:
    staging = _staging(tmp_path, 2.0, pid=os.getpid())
    assert ckptkit.cleanup(tmp_path) == []
    assert staging.exists()


def test_cleanup_cli_reports_sharded_work_folders(tmp_path: Path) -> None:
    _staging(tmp_path, 2.0)
    _aside(tmp_path, 1.0)
    dry = CliRunner().invoke(app, ["cleanup", "--dry-run", str(tmp_path)])
    assert dry.exit_code == 0, dry.output
    assert f"would restore {tmp_path / 'ck'} from " in dry.output
    assert dry.output.splitlines()[-1] == (
        "would remove 0 temporary files, 1 unfinished sharded saves, "
        "1 checkpoints restored"
    )
    real = CliRunner().invoke(app, ["cleanup", str(tmp_path)])
    assert real.exit_code == 0, real.output
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    assert _value(tmp_path / "ck") == 2.0


def test_validate_tree_counts_work_folders_as_temporary(tmp_path: Path) -> None:
    _saved(tmp_path / "ck", 1.0)
    _staging(tmp_path, 2.0)
    tree = ckptkit.validate_tree([tmp_path])
    assert [r.path for r in tree.reports] == [tmp_path / "ck"]
    assert tree.ok
    assert len(tree.temporary) == 1


def test_validate_levels_on_a_damaged_sharded_folder(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ck", 1.0)
    other = _saved(tmp_path / "other", 1.0)
    shard = folder / "shard-00000.ckpt"
    shutil.copy(shard, tmp_path / "good.ckpt")
    shutil.copy(other / "shard-00000.ckpt", shard)  # same bytes, another save
    report = ckptkit.validate(folder, level="quick")
    assert report.reason == (
        "shard-00000.ckpt: shard belongs to another save "
        "(its header does not match the index)"
    )
    shard.unlink()
    assert ckptkit.validate(folder, level="exists").ok
    assert "shard-00000.ckpt: file does not exist" in ckptkit.validate(folder).reason
    shutil.copy(tmp_path / "good.ckpt", shard)
    assert ckptkit.validate(folder, required_keys=["w", "value"]).ok
    missing = ckptkit.validate(folder, required_keys=["nope"])
    assert missing.kind == "missing_keys"  # intact: not damage, never recorded
    assert missing.reason == (
        "required keys missing from the state: nope "
        "(the file is intact; check the key or the checkpoint chosen)"
    )
    os.truncate(shard, shard.stat().st_size - 1)
    assert "truncated" in ckptkit.validate(folder, level="quick").reason
    shutil.copy(tmp_path / "good.ckpt", shard)
    flip_bit(folder / "ckptkit-sharded.json", 8 * 40)
    damaged = ckptkit.validate(folder, level="quick")
    assert damaged.kind == "corrupted"
    assert "index" in damaged.reason
