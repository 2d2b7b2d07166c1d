"""Behaviour of ckptkit.CheckpointManager on real folders."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ckptkit
import ckptkit._file.writer as save_module
import ckptkit.manager._file_steps as writing_module
from ckptkit._file.format import KEY_HEADER, METADATA_KEY, temp_name

from ...strategies import assert_same_state
from ...support.corrupt import flip_tensor_bit, truncate


def _state(value: float) -> dict[str, Any]:
    weight = torch.full((4, 8), value)
    return {
        "model": {"w": weight, "tied": weight, "row": weight[1]},
        "optim": [torch.arange(5) + int(value), {"lr": 0.1}],
        "numpy": np.full(3, value),
        "step_text": f"value {value}",
    }


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("step-"))


class _BlockedWriter:
    """Replaces the manager's writer; each write waits until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        real = save_module.write_encoded

        def blocked(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            assert self.release.wait(timeout=60)
            return real(*args, **kwargs)

        monkeypatch.setattr(writing_module, "write_encoded", blocked)


def test_steps_are_zero_padded_files_in_ls_order(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, keep_last=10) as mgr:
        for step in (100, 2, 10):
            mgr.save(step, {"step": step})
        assert mgr.steps() == [2, 10, 100]
        assert mgr.latest() == 100
    assert _names(tmp_path) == [
        "step-000000000002.ckpt",
        "step-000000000010.ckpt",
        "step-000000000100.ckpt",
    ]


def test_steps_latest_best_come_from_the_folder_after_a_restart(tmp_path: Path) -> None:
    losses = {1: 0.5, 2: 0.25, 3: 0.75}
    with ckptkit.CheckpointManager(tmp_path, best_metric="loss") as mgr:
        for step, loss in losses.items():
            mgr.save(step, {"step": step}, metrics={"loss": loss, "acc": 1})
    again = ckptkit.CheckpointManager(tmp_path, best_metric="loss")
    assert (again.steps(), again.latest(), again.best()) == ([1, 2, 3], 3, 2)
    info = again.restore(2).info
    assert info.metadata == {"step": 2, "metrics": {"loss": 0.25, "acc": 1}}
    again.close()


def test_empty_folder_has_no_steps_and_restore_raises_not_found(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path / "new", best_metric="loss") as mgr:
        assert (mgr.steps(), mgr.latest(), mgr.best()) == ([], None, None)
        with pytest.raises(ckptkit.CheckpointNotFoundError):
            mgr.restore()
        with pytest.raises(ckptkit.CheckpointNotFoundError):
            mgr.restore(3)


def test_retention_keeps_last_and_best_and_deletes_the_rest(tmp_path: Path) -> None:
    losses = [0.9, 0.1, 0.8, 0.2, 0.7, 0.6, 0.5]
    with ckptkit.CheckpointManager(
        tmp_path, keep_last=2, keep_best=2, best_metric="loss"
    ) as mgr:
        for step, loss in enumerate(losses):
            mgr.save(step, {"step": step}, metrics={"loss": loss})
        assert mgr.steps() == [1, 3, 5, 6]
        assert mgr.best() == 1
    assert len(_names(tmp_path)) == 4


def test_retention_with_max_mode_ranks_higher_first(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(
        tmp_path, keep_last=1, keep_best=1, best_metric="acc", mode="max"
    ) as mgr:
        for step, acc in enumerate([0.5, 0.9, 0.1, 0.2]):
            mgr.save(step, {}, metrics={"acc": acc})
        assert mgr.steps() == [1, 3]


def test_non_finite_metrics_are_stored_and_rank_last(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(
        tmp_path, keep_last=1, keep_best=1, best_metric="loss"
    ) as mgr:
        mgr.save(0, {}, metrics={"loss": 3.0})
        mgr.save(1, {}, metrics={"loss": math.nan})
        mgr.save(2, {}, metrics={"loss": math.inf})
        assert mgr.steps() == [0, 2]
        assert mgr.restore(2).info.metadata["metrics"] == {"loss": "inf"}


def test_metrics_must_be_numbers(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        with pytest.raises(TypeError, match=r"\.item\(\)"):
            mgr.save(0, {}, metrics={"loss": torch.tensor(1.0)})  # type: ignore[dict-item]
        with pytest.raises(TypeError):
            mgr.save(0, {}, metrics={1: 1.0})  # type: ignore[dict-item]
        assert mgr.steps() == []


@pytest.mark.parametrize("step", [-1, 1.5, True])
def test_save_refuses_a_bad_step(tmp_path: Path, step: Any) -> None:
    with (
        ckptkit.CheckpointManager(tmp_path) as mgr,
        pytest.raises((TypeError, ValueError)),
    ):
        mgr.save(step, {})


def test_in_progress_steps_are_steps(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(5, {"partial": 1}, status="in_progress")
        assert mgr.steps() == [5]
        assert mgr.restore().info.status == "in_progress"


@pytest.mark.parametrize(
    "options",
    [
        {"keep_last": 0},
        {"keep_best": -1},
        {"keep_best": 1},
        {"mode": "lowest"},
        {"version": "0.x"},
        {"registry": ckptkit.MigrationRegistry("demo", current="1.1")},
        {"registry": ckptkit.MigrationRegistry("demo", "1.0"), "schema": "other"},
    ],
)
def test_inconsistent_options_are_refused(tmp_path: Path, options: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ckptkit.CheckpointManager(tmp_path, **options)


def test_best_without_a_metric_is_a_programming_error(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr, pytest.raises(ValueError):  # noqa: PT011
        mgr.best()


def test_restore_falls_back_past_a_damaged_newest_step(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, keep_last=5) as mgr:
        for step in range(3):
            mgr.save(step, _state(float(step)))
    damaged = tmp_path / "step-000000000002.ckpt"
    flip_tensor_bit(damaged)
    mgr = ckptkit.CheckpointManager(tmp_path, keep_last=5)
    assert mgr.latest() == 2  # the header is intact: only a full read can tell
    with pytest.warns(ckptkit.CheckpointFallbackWarning, match="restored step 1"):
        checkpoint = mgr.restore()
    assert_same_state(checkpoint.state, _state(1.0))
    entry = ckptkit.FailureLedger(tmp_path).latest(damaged)
    assert entry is not None
    assert "checksum mismatch" in entry.reason
    assert mgr.steps() == [0, 1]  # found damaged: no longer a step
    mgr.close()


def test_restore_falls_back_past_a_truncated_step_and_records_it(
    tmp_path: Path,
) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, _state(1.0))
        mgr.save(2, _state(2.0))
    damaged = tmp_path / "step-000000000002.ckpt"
    truncate(damaged, 20)
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.steps() == [1]
        with pytest.warns(ckptkit.CheckpointFallbackWarning):
            assert mgr.restore().state["step_text"] == "value 1.0"
    with (
        ckptkit.CheckpointManager(tmp_path) as mgr,
        pytest.warns(ckptkit.CheckpointFallbackWarning),
    ):
        mgr.restore()
    # The same damage found again by a later process is not recorded twice.
    entries = ckptkit.FailureLedger(tmp_path).entries()
    assert [Path(e.path).name for e in entries] == [damaged.name]


def test_restore_of_a_named_damaged_step_raises_and_records(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, _state(1.0))
        mgr.save(2, _state(2.0))
        flip_tensor_bit(tmp_path / "step-000000000001.ckpt")
        with pytest.raises(ckptkit.ChecksumMismatchError):
            mgr.restore(1)
    assert ckptkit.FailureLedger(tmp_path).latest(tmp_path / "step-000000000001.ckpt")


def test_restore_raises_when_every_step_is_damaged(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, _state(1.0))
    flip_tensor_bit(tmp_path / "step-000000000001.ckpt")
    with (
        ckptkit.CheckpointManager(tmp_path) as mgr,
        pytest.raises(ckptkit.CheckpointNotFoundError, match="step 1"),
    ):
        mgr.restore()


def test_a_step_of_another_schema_is_refused_not_skipped(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, schema="old") as mgr:
        mgr.save(1, {"x": 1})
    with (
        ckptkit.CheckpointManager(tmp_path, schema="new") as mgr,
        pytest.raises(ckptkit.SchemaMismatchError),
    ):
        mgr.restore()


def test_restore_migrates_older_versions_with_a_registry(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, schema="trainer") as mgr:
        mgr.save(4, {"w": torch.ones(2)})
    registry = ckptkit.MigrationRegistry("trainer", current="1.1")

    @registry.migration("1.0", "1.1")
    def add_epoch(state: dict[str, Any]) -> dict[str, Any]:
        """1.0 -> 1.1: states record the epoch."""
        state["epoch"] = 0
        return state

    with ckptkit.CheckpointManager(tmp_path, registry=registry, version="1.1") as mgr:
        checkpoint = mgr.restore()
        assert checkpoint.state["epoch"] == 0
        assert [r.to_version for r in checkpoint.applied] == ["1.1"]
        mgr.save(5, checkpoint.state)
    assert ckptkit.inspect(tmp_path / "step-000000000005.ckpt").version == "1.1"


def test_a_write_that_fails_validation_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path, keep_last=1)
    mgr.save(1, _state(1.0))
    real = save_module.write_encoded

    def damaging(path: Path, *args: Any, **kwargs: Any) -> Any:
        info = real(path, *args, **kwargs)
        flip_tensor_bit(path)
        return info

    monkeypatch.setattr(writing_module, "write_encoded", damaging)
    with pytest.raises(ckptkit.CheckpointCorruptError, match="right after writing"):
        mgr.save(2, _state(2.0))
    assert mgr.steps() == [1]
    assert ckptkit.validate(tmp_path / "step-000000000001.ckpt").ok
    assert ckptkit.FailureLedger(tmp_path).latest(tmp_path / "step-000000000002.ckpt")
    mgr.close()


def _file_parts(path: Path) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    top = json.loads(raw[8 : 8 + length])
    metadata = top.pop(METADATA_KEY)
    header = json.loads(metadata[KEY_HEADER])
    del header["created_at"]
    return top, header, raw[8 + length :]


def test_async_save_writes_the_same_file_as_sync_save(tmp_path: Path) -> None:
    state = _state(3.0)
    state["view"] = state["model"]["w"].t()[2:5]  # another view of the same storage
    for name, is_async in (("sync", False), ("async", True)):
        with ckptkit.CheckpointManager(tmp_path / name, async_save=is_async) as mgr:
            mgr.save(7, state, metrics={"loss": 0.5})
    sync = _file_parts(tmp_path / "sync" / "step-000000000007.ckpt")
    done = _file_parts(tmp_path / "async" / "step-000000000007.ckpt")
    assert sync == done
    restored = ckptkit.load(tmp_path / "async" / "step-000000000007.ckpt").state
    assert restored["model"]["tied"] is restored["model"]["w"]
    assert_same_state(restored, state)


def test_mutating_the_state_after_async_save_returns_changes_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _BlockedWriter(monkeypatch)
    state = _state(1.0)
    expected = _state(1.0)
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, state)
        assert writer.started.wait(timeout=60)  # the write has begun, and waits
        state["model"]["w"].fill_(-5.0)
        state["optim"][0].zero_()
        state["numpy"][:] = 9.0
        state["optim"][1]["lr"] = 99.0
        state["extra"] = torch.zeros(1)
        writer.release.set()
        mgr.wait()
        assert_same_state(mgr.restore(1).state, expected)


def test_an_async_step_is_not_a_step_until_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ckptkit.CheckpointManager(tmp_path, async_save=True, best_metric="m") as mgr:
        mgr.save(1, {"x": 1}, metrics={"m": 5.0})
        mgr.wait()
        writer = _BlockedWriter(monkeypatch)
        mgr.save(2, {"x": 2}, metrics={"m": 1.0})
        assert writer.started.wait(timeout=60)
        assert (mgr.steps(), mgr.latest(), mgr.best()) == ([1], 1, 1)
        writer.release.set()
        mgr.wait()
        assert (mgr.steps(), mgr.latest(), mgr.best()) == ([1, 2], 2, 2)


def test_a_second_save_waits_for_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _BlockedWriter(monkeypatch)
    mgr = ckptkit.CheckpointManager(tmp_path, async_save=True)
    mgr.save(1, {"x": 1})
    assert writer.started.wait(timeout=60)
    second = threading.Thread(target=mgr.save, args=(2, {"x": 2}))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive()  # blocked behind the first save
    assert not (tmp_path / "step-000000000001.ckpt").exists()
    writer.release.set()
    second.join(timeout=60)
    assert not second.is_alive()
    mgr.close()
    assert mgr.steps() == [1, 2]


def _failing_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writing_module, "write_encoded", full_disk)


@pytest.mark.parametrize("call", ["save", "wait", "close"])
def test_a_background_write_error_surfaces_on_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path, async_save=True)
    mgr.save(0, {"x": 0})
    mgr.wait()
    _failing_writer(monkeypatch)
    mgr.save(1, {"x": 1})  # returns: the error happens in the background
    monkeypatch.undo()
    next_call = {
        "save": lambda: mgr.save(2, {"x": 2}),
        "wait": mgr.wait,
        "close": mgr.close,
    }[call]
    with pytest.raises(OSError, match="No space left"):
        next_call()
    mgr.wait()  # raised once, not again
    mgr.close()
    assert mgr.steps() == [0]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".ckptkit-tmp")]


def test_an_unstorable_leaf_is_refused_by_save_itself(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        with pytest.raises(ckptkit.SerializationError, match="optim"):
            mgr.save(1, {"optim": {"sched": object()}})
        mgr.wait()
        assert mgr.steps() == []


def test_the_host_buffer_is_reused_across_async_saves(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, _state(1.0))
        first = mgr._steps.buffer._buffer
        assert first is not None
        mgr.save(2, _state(2.0))
        assert mgr._steps.buffer._buffer is first
        mgr.wait()
        assert_same_state(mgr.restore(1).state, _state(1.0))
    assert mgr._steps.buffer.capacity_bytes == 0  # freed by close


def test_restore_waits_for_the_save_in_flight(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, _state(1.0))
        assert mgr.restore().info.metadata["step"] == 1


def test_a_closed_manager_refuses_saves_but_still_reads(tmp_path: Path) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path)
    mgr.save(1, {"x": 1})
    mgr.close()
    mgr.close()
    with pytest.raises(RuntimeError, match="closed"):
        mgr.save(2, {"x": 2})
    assert mgr.restore().state == {"x": 1}


def test_stale_temporary_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / temp_name("step-000000000003.ckpt", "0" * 12, int(dead.stdout))
    # Another live process (the parent); see test_save_load for this one's own.
    live = tmp_path / temp_name("step-000000000004.ckpt", "1" * 12, os.getppid())
    stale.write_bytes(b"partial")
    live.write_bytes(b"partial")
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.steps() == []
    assert not stale.exists()
    assert live.exists()


def test_a_file_renamed_to_another_step_is_not_that_step(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, {"x": 1})
        (tmp_path / "step-000000000001.ckpt").rename(
            tmp_path / "step-000000000009.ckpt"
        )
        assert mgr.steps() == []
        with pytest.raises(ckptkit.CheckpointNotFoundError):
            mgr.restore()


def test_interpreter_exit_waits_for_the_save_in_flight(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, torch, ckptkit
        mgr = ckptkit.CheckpointManager(sys.argv[1], async_save=True)
        mgr.save(3, {"w": torch.arange(4 << 20, dtype=torch.float32)})
        # no wait(), no close(): exit must still finish the write
        """
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], check=True, timeout=120
    )
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.steps() == [3]
        restored = mgr.restore().state["w"]
    assert torch.equal(restored, torch.arange(4 << 20, dtype=torch.float32))


def test_a_background_error_at_exit_is_printed_not_lost(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import errno, sys, ckptkit, ckptkit.manager._file_steps as m
        def full_disk(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        m.write_encoded = full_disk
        mgr = ckptkit.CheckpointManager(sys.argv[1], async_save=True)
        mgr.save(3, {"x": 1})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "No space left on device" in done.stderr


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        (None, "leave the metric out of metrics="),
        (torch.tensor(0.5), "value.item()"),
        (np.array([0.5]), "value.item()"),
        ("0.5", "float(value)"),
        (True, "int(value) or float(value)"),
        (1 + 2j, "a real number"),
    ],
)
def test_a_bad_metric_is_told_its_own_fix(
    tmp_path: Path, value: object, fix: str
) -> None:
    """Issue 13 item 9: a None metric is not told to "use .item()"."""
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        with pytest.raises(TypeError) as caught:
            mgr.save(0, {}, metrics={"val_loss": value})  # type: ignore[dict-item]
        message = str(caught.value)
        assert "'val_loss'" in message
        assert fix in message
        if value is None:
            assert "item()" not in message
        assert mgr.steps() == []


@pytest.mark.parametrize(
    ("call", "fix"),
    [
        (lambda m: m.save(1.0, {}), "pass int(step)"),
        (lambda m: m.save(0, {}, status="done"), "'complete' or 'in_progress'"),
        (lambda m: m.save(0, {}, metrics=[("loss", 1.0)]), "metrics={'val_loss'"),
        (lambda m: m.save(0, {}, metrics={1: 1.0}), "pass str(1)"),
    ],
)
def test_each_refusal_of_save_names_the_fix(
    tmp_path: Path, call: Any, fix: str
) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        with pytest.raises((TypeError, ValueError), match=re.escape(fix)):
            call(mgr)
        assert mgr.steps() == []


def test_a_closed_manager_says_how_to_save_again(tmp_path: Path) -> None:
    mgr = ckptkit.CheckpointManager(tmp_path)
    mgr.close()
    with pytest.raises(RuntimeError, match="open a new CheckpointManager"):
        mgr.save(0, {})
