"""Asynchronous saves block the loop only for the copy that safety needs.

Issue 13 items 4 and 10: the state's containers and tensor bytes are copied in
``save``; the encoding (the JSON tree of a long metrics history) runs on the
background thread; a restore makes the next save's host buffer ready.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ckptkit
import ckptkit.manager._file_steps as manager_module
import ckptkit.manager._snapshot as snapshot_module

from ...strategies import assert_same_state


def _record_encoding_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    threads: list[str] = []
    real = manager_module.encode_state

    def recording(state: object) -> Any:
        threads.append(threading.current_thread().name)
        return real(state)

    # Sync saves encode in the manager, async ones in the snapshot's job.
    monkeypatch.setattr(manager_module, "encode_state", recording)
    monkeypatch.setattr(snapshot_module, "encode_state", recording)
    return threads


def _trainer_state() -> dict[str, Any]:
    weight = torch.randn(8, 4)
    return {
        "model": {"w": weight, "tied": weight, "row": weight[2]},
        "optimizer": {"state": {0: {"exp_avg": torch.zeros(8, 4)}}, "lr": 1e-3},
        "rng": {"numpy": np.random.get_state(), "torch": torch.get_rng_state()},
        "history": [{"step": i, "loss": 1.0 / (i + 1), "tag": "t"} for i in range(500)],
        "sizes": (torch.Size([2, 3]), torch.float16, np.float32(0.5), b"raw", None),
    }


def test_an_async_save_encodes_on_the_background_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_encoding_threads(monkeypatch)
    state = _trainer_state()
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, state)
        mgr.wait()
        assert threads == ["ckptkit-save-1"]
        assert_same_state(mgr.restore(1).state, state)


def test_a_leaf_only_the_codec_can_judge_is_encoded_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tensor subclass (here a Parameter) takes the encode-first path."""
    threads = _record_encoding_threads(monkeypatch)
    parameter = torch.nn.Parameter(torch.ones(3))
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, {"p": parameter, "history": [{"x": 1}]})
        caller = threading.current_thread().name
        mgr.wait()
        assert threads == [caller]
        assert torch.equal(mgr.restore(1).state["p"], torch.ones(3))


def test_changing_containers_after_an_async_save_changes_nothing_written(
    tmp_path: Path,
) -> None:
    state = _trainer_state()
    expected = copy.deepcopy(state)
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        mgr.save(1, state)
        # The loop goes on at once: containers and tensors change in place.
        state["history"].append({"step": 500})
        state["history"][0]["loss"] = -1.0
        state["optimizer"]["lr"] = 5.0
        state["optimizer"]["state"][0]["exp_avg"].add_(3)
        state["model"]["w"].zero_()
        state["rng"]["numpy"][1][:] = 0
        state["rng"]["torch"].zero_()
        del state["sizes"]
        mgr.wait()
        restored = mgr.restore(1).state
    assert_same_state(restored, expected)
    assert restored["model"]["tied"] is restored["model"]["w"]


def test_restore_makes_the_next_saves_buffer_ready(tmp_path: Path) -> None:
    big = {"w": torch.randn(256, 256), "b": torch.randn(256)}
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, big)
    with ckptkit.CheckpointManager(tmp_path, async_save=True) as mgr:
        state = mgr.restore().state
        prepared = (
            mgr._steps.buffer._buffer if mgr._steps.buffer.capacity_bytes else None
        )
        assert prepared is not None
        assert mgr._steps.buffer.capacity_bytes >= 257 * 256 * 4
        mgr.save(2, state)
        assert mgr._steps.buffer._buffer is prepared  # the first save reused it
        mgr.wait()
        assert_same_state(mgr.restore(2).state, big)


def test_a_sync_manager_prepares_no_buffer_on_restore(tmp_path: Path) -> None:
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        mgr.save(1, {"w": torch.ones(64)})
        mgr.restore()
        assert mgr._steps.buffer.capacity_bytes == 0
