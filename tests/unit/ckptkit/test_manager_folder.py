"""CheckpointManager and its folder: one writer, mistyped paths, foreign files, index.

Issue 13 items 2 (one writer per folder, in one process) and 8 (mistyped resume
paths), issue 12 item 6 (retention never deletes or changes a file ckptkit did not
write), issue 13 item 4 (steps() reads the index, never every header).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import ckptkit
import ckptkit.manager._steps as steps_module
from ckptkit._file import fs
from ckptkit._file.format import (
    MANAGER_LOCK_FILENAME,
    STEP_INDEX_FILENAME,
    step_name,
)


def _step(directory: Path, step: int) -> Path:
    return directory / step_name(step)


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def _count_header_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every header the step folder reads."""
    reads: list[Path] = []
    real = steps_module.validate

    def counting(path: Any, **kwargs: Any) -> Any:
        reads.append(Path(path))
        return real(path, **kwargs)

    monkeypatch.setattr(steps_module, "validate", counting)
    return reads


# --- one writer per folder (issue 13 item 2) ---------------------------------


def test_a_second_manager_in_the_same_process_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    with ckptkit.CheckpointManager(tmp_path) as first:
        first.save(1, {"x": 1})
        with pytest.raises(ckptkit.FolderLockedError) as caught:
            ckptkit.CheckpointManager(tmp_path)
        message = str(caught.value)
        assert f"process {os.getpid()} on host {socket.gethostname()}" in message
        assert "(this process)" in message
        assert MANAGER_LOCK_FILENAME in message
        assert "One writer per folder" in message
        assert isinstance(caught.value, ckptkit.CheckpointError)
        assert caught.value.path == str(tmp_path)
        first.save(2, {"x": 2})  # the holder is unaffected
    assert ckptkit.FailureLedger(tmp_path).entries() == []


def test_the_lock_file_names_host_and_pid_and_close_removes_it(
    tmp_path: Path,
) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path)
    holder = json.loads((tmp_path / MANAGER_LOCK_FILENAME).read_text())
    assert (holder["host"], holder["pid"]) == (socket.gethostname(), os.getpid())
    mgr.close()
    assert not (tmp_path / MANAGER_LOCK_FILENAME).exists()
    with ckptkit.CheckpointManager(tmp_path) as again:  # free again
        assert again.steps() == []


def test_a_manager_collected_without_close_lets_go_of_the_folder(
    tmp_path: Path,
) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path)
    del mgr  # garbage collected: its finalizer releases the lock
    with ckptkit.CheckpointManager(tmp_path) as again:
        assert again.steps() == []


def test_a_stale_lock_file_of_a_dead_process_on_this_host_is_taken_over(
    tmp_path: Path,
) -> None:
    stale = {"host": socket.gethostname(), "pid": _dead_pid(), "since": "then"}
    (tmp_path / MANAGER_LOCK_FILENAME).write_text(json.dumps(stale))
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, {"x": 1})
        holder = json.loads((tmp_path / MANAGER_LOCK_FILENAME).read_text())
        assert holder["pid"] == os.getpid()


def test_a_lock_file_naming_another_host_is_respected_with_the_fix(
    tmp_path: Path,
) -> None:
    other = {"host": "gpu-node-17", "pid": 4242, "since": "2026-01-01T00:00:00Z"}
    lock_file = tmp_path / MANAGER_LOCK_FILENAME
    lock_file.write_text(json.dumps(other))
    with pytest.raises(ckptkit.FolderLockedError) as caught:
        ckptkit.CheckpointManager(tmp_path)
    message = str(caught.value)
    assert "process 4242 on host gpu-node-17" in message
    assert f"delete {lock_file}" in message
    assert json.loads(lock_file.read_text()) == other  # untouched


@pytest.mark.parametrize("alive", [True, False])
def test_without_flock_the_pid_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alive: bool
) -> None:
    """Where the file system has no flock, only a live pid on this host holds."""
    monkeypatch.setattr(fs, "lock", lambda *_args, **_kwargs: False)
    pid = os.getpid() if alive else _dead_pid()
    holder = {"host": socket.gethostname(), "pid": pid, "since": ""}
    (tmp_path / MANAGER_LOCK_FILENAME).write_text(json.dumps(holder))
    if alive:
        with pytest.raises(ckptkit.FolderLockedError, match=f"process {pid}"):
            ckptkit.CheckpointManager(tmp_path)
    else:
        ckptkit.CheckpointManager(tmp_path).close()


def test_a_lock_file_with_foreign_content_is_not_a_holder(tmp_path: Path) -> None:
    (tmp_path / MANAGER_LOCK_FILENAME).write_bytes(b"\x00garbage")
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(0, {"x": 0})


# --- mistyped resume paths (issue 13 item 8) ----------------------------------


def test_create_false_refuses_a_missing_folder_and_creates_nothing(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "runs" / "typo"
    with pytest.raises(ckptkit.CheckpointNotFoundError) as caught:
        ckptkit.CheckpointManager(typo, create=False)
    assert "does not exist" in str(caught.value)
    assert "create=True" in str(caught.value)
    assert not (tmp_path / "runs").exists()


def test_create_false_opens_an_existing_folder(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(3, {"x": 3})
    with ckptkit.CheckpointManager(tmp_path, create=False) as mgr:
        assert mgr.restore().state == {"x": 3}


def test_restore_in_a_folder_the_manager_just_created_says_so(tmp_path: Path) -> None:
    typo = tmp_path / "runs" / "typo"
    with (
        ckptkit.CheckpointManager(typo) as mgr,
        pytest.raises(ckptkit.CheckpointNotFoundError) as caught,
    ):
        mgr.restore()
    message = str(caught.value)
    assert "created it just now" in message
    assert "create=False" in message


def test_restore_in_an_existing_empty_folder_does_not_blame_the_path(
    tmp_path: Path,
) -> None:
    with (
        ckptkit.CheckpointManager(tmp_path) as mgr,
        pytest.raises(ckptkit.CheckpointNotFoundError) as caught,
    ):
        mgr.restore()
    assert "created" not in str(caught.value)


def test_a_file_given_as_the_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    ckptkit.save(path, {"x": 1})
    with pytest.raises(NotADirectoryError, match="not a folder"):
        ckptkit.CheckpointManager(path)


# --- folder boundaries (issue 12 item 6) --------------------------------------


def test_a_step_named_symlink_is_not_a_step_and_neither_it_nor_its_target_is_deleted(
    tmp_path: Path,
) -> None:
    run, outside = tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.ckpt"
    ckptkit.save(target, {"w": torch.ones(2)}, metadata={"step": 0})
    before = target.read_bytes()
    run.mkdir()
    link = _step(run, 0)
    link.symlink_to(target)
    with ckptkit.CheckpointManager(run, keep_last=1) as mgr:
        assert mgr.steps() == []
        for step in (1, 2, 3):
            mgr.save(step, {"step": step})
        assert mgr.steps() == [3]
        assert mgr.restore().state == {"step": 3}
        with pytest.raises(ckptkit.CheckpointNotFoundError, match="symbolic link"):
            mgr.restore(0)
        with pytest.raises(FileExistsError, match="not one this manager wrote"):
            mgr.save(0, {"step": 0})
    assert link.is_symlink()
    assert target.read_bytes() == before


def test_restore_does_not_follow_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    run, outside = tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    ckptkit.save(outside / "other.ckpt", {"other": 1}, metadata={"step": 9})
    with ckptkit.CheckpointManager(run) as mgr:
        mgr.save(1, {"mine": 1})
        _step(run, 9).symlink_to(outside / "other.ckpt")
        assert mgr.latest() == 1
        assert mgr.restore().state == {"mine": 1}


@pytest.mark.parametrize("kind", ["torch", "no_step_metadata", "wrong_step"])
def test_files_named_like_steps_written_by_someone_else_are_left_alone(
    tmp_path: Path, kind: str
) -> None:
    foreign = _step(tmp_path, 5)
    if kind == "torch":
        torch.save({"w": torch.ones(3)}, foreign)
    elif kind == "no_step_metadata":
        ckptkit.save(foreign, {"w": torch.ones(3)})
    else:
        ckptkit.save(foreign, {"w": torch.ones(3)}, metadata={"step": 4})
    before = foreign.read_bytes()
    with ckptkit.CheckpointManager(tmp_path, keep_last=2) as mgr:
        for step in (1, 2, 3, 6, 7):
            mgr.save(step, {"step": step})
        # Not a step, not counted toward keep_last: the last two are 6 and 7.
        assert mgr.steps() == [6, 7]
        assert mgr.restore().state == {"step": 7}
        with pytest.raises(FileExistsError):
            mgr.save(5, {"step": 5})
    assert foreign.read_bytes() == before


def test_another_schemas_steps_do_not_count_toward_keep_last_and_stay(
    tmp_path: Path,
) -> None:
    with ckptkit.CheckpointManager(tmp_path, schema="old") as mgr:
        mgr.save(50, {"old": 1})
    old = _step(tmp_path, 50)
    before = old.read_bytes()
    with ckptkit.CheckpointManager(tmp_path, schema="new", keep_last=1) as mgr:
        for step in (1, 2, 3):
            mgr.save(step, {"step": step})
        assert mgr.steps() == [3, 50]  # listed (restore refuses, never skips it)
        with pytest.raises(FileExistsError, match="another schema"):
            mgr.save(50, {"step": 50})
    assert old.read_bytes() == before


def test_temp_like_names_with_absurd_fields_are_ignored_without_an_error(
    tmp_path: Path,
) -> None:
    absurd = [
        f".step-000000000001.ckpt.{'a' * 12}.{'9' * 40}.ckptkit-tmp",
        f".step-000000000001.ckpt.{'b' * 12}.99999999999.ckptkit-tmp",
        f".step-000000000001.ckpt.{'c' * 12}.0.ckptkit-tmp",
        "step-" + "9" * 200 + ".ckpt",
        "step-99999999999999999999.ckpt",
    ]
    for name in absurd:
        (tmp_path / name).write_bytes(b"not ours")
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.steps() == []
        mgr.save(1, {"x": 1})
        assert mgr.steps() == [1]
    assert ckptkit.cleanup(tmp_path) == []
    for name in absurd:
        assert (tmp_path / name).read_bytes() == b"not ours"


def test_steps_beyond_int64_are_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match="2\\*\\*63 - 1"):
        steps_module.check_step(1 << 63)


# --- the step index (issue 13 item 4) ----------------------------------------


def _run_with_steps(directory: Path, steps: list[int]) -> None:
    with ckptkit.CheckpointManager(directory, keep_last=10, best_metric="loss") as mgr:
        for step in steps:
            mgr.save(
                step, {"w": torch.full((3,), float(step))}, metrics={"loss": -step}
            )


def test_a_new_manager_ranks_steps_from_the_index_without_reading_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_with_steps(tmp_path, [1, 2, 3])
    reads = _count_header_reads(monkeypatch)
    with ckptkit.CheckpointManager(tmp_path, best_metric="loss") as mgr:
        assert (mgr.steps(), mgr.latest(), mgr.best()) == ([1, 2, 3], 3, 3)
    assert reads == []


@pytest.mark.parametrize("damage", ["missing", "garbled", "checksum", "version"])
def test_a_missing_or_damaged_index_is_rebuilt_from_the_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    _run_with_steps(tmp_path, [1, 2, 3])
    index = tmp_path / STEP_INDEX_FILENAME
    if damage == "missing":
        index.unlink()
    elif damage == "garbled":
        index.write_bytes(index.read_bytes()[:40])
    else:
        top = json.loads(index.read_text())
        if damage == "checksum":  # a lie that keeps the JSON valid
            top["files"][step_name(3)]["metrics"] = {"loss": -100}
        else:
            top["version"] = 99
        index.write_text(json.dumps(top))
    reads = _count_header_reads(monkeypatch)
    with ckptkit.CheckpointManager(tmp_path, best_metric="loss") as mgr:
        assert (mgr.steps(), mgr.best()) == ([1, 2, 3], 3)
    assert sorted(p.name for p in reads) == [step_name(s) for s in (1, 2, 3)]
    reads.clear()
    with ckptkit.CheckpointManager(tmp_path, best_metric="loss") as mgr:
        assert mgr.steps() == [1, 2, 3]
    assert reads == []  # rebuilt and written by the manager before


def test_the_folder_wins_over_a_stale_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_with_steps(tmp_path, [1, 2, 3])
    stale = (tmp_path / STEP_INDEX_FILENAME).read_bytes()
    _step(tmp_path, 1).unlink()  # gone behind the index's back
    with ckptkit.CheckpointManager(tmp_path, schema=None) as mgr:
        mgr.save(2, {"w": torch.zeros(3)}, metrics={"loss": 7.0})  # replaced
    (tmp_path / STEP_INDEX_FILENAME).write_bytes(stale)  # rolled back
    reads = _count_header_reads(monkeypatch)
    with ckptkit.CheckpointManager(tmp_path, best_metric="loss") as mgr:
        assert (mgr.steps(), mgr.best()) == ([2, 3], 3)
        assert mgr.restore(2).info.metadata["metrics"] == {"loss": 7.0}
    assert [p.name for p in reads] == [step_name(2)]  # only the changed file


def test_a_read_only_folder_says_how_to_read_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, {"x": 1})

    def read_only(path: Path) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(fs, "open_append", read_only)
    with pytest.raises(OSError, match=r"ckptkit\.load\(path\)") as caught:
        ckptkit.CheckpointManager(tmp_path)
    assert caught.value.errno == errno.EROFS
    assert MANAGER_LOCK_FILENAME in str(caught.value)
