"""ckptkit.distributed in one process (no process group): what is saved comes back."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import random
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed.distributed_c10d as c10d

import ckptkit
import ckptkit.distributed as ckd
from ckptkit.distributed._tree import SavedTree, merge_trees, split_state

from ...fixtures.ckptkit import golden_states
from ...support.corrupt import flip_bit, flip_tensor_bit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ckptkit"


def _state() -> dict[Any, Any]:
    random.seed(3)
    np.random.seed(3)
    return {
        "model": OrderedDict(
            w=torch.randn(4, 3),
            b=torch.arange(5),
            half=torch.randn(2, 2).to(torch.bfloat16),
            flags=torch.tensor([True, False]),
            z=torch.randn(3, dtype=torch.complex128),
            empty=torch.empty(0, 3),
            scalar=torch.tensor(2.5),
        ),
        "step": 10**20,
        "lr": float("nan"),
        "betas": (0.9, 0.999),
        "name": "run",
        "raw": b"\x00\xff",
        3: "int key",
        "rng": {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        },
        "dtype": torch.float16,
        "size": torch.Size([2, 3]),
    }


def _same(actual: Any, expected: Any) -> None:
    assert type(actual) is type(expected)
    if isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype
        assert actual.shape == expected.shape
        assert torch.equal(actual, expected)
    elif isinstance(expected, np.ndarray):
        assert np.array_equal(actual, expected)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            _same(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            _same(a, e)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected


def test_save_then_ckptkit_load_gives_back_every_type_exactly(tmp_path: Path) -> None:
    state = _state()
    info = ckd.save(tmp_path / "ck", state, schema="s", metadata={"epoch": 2})
    assert (info.world_size, len(info.shards), info.schema) == (1, 1, "s")
    loaded = ckptkit.load(tmp_path / "ck", verify="full")
    _same(loaded.state, state)
    assert loaded.info.metadata == {"epoch": 2}


def test_load_fills_the_state_in_place_and_replaces_values(tmp_path: Path) -> None:
    state = _state()
    ckd.save(tmp_path / "ck", state)
    model = OrderedDict((k, torch.zeros_like(v)) for k, v in state["model"].items())
    weight = model["w"]
    target = {"model": model, "step": 0, "rng": None, "betas": None, 3: None}
    checkpoint = ckd.load(tmp_path / "ck", target)
    assert checkpoint.state is target
    assert target["model"]["w"] is weight  # filled in place
    _same(target["model"], state["model"])
    assert target["step"] == 10**20
    assert target[3] == "int key"
    _same(target["rng"], state["rng"])
    _same(target["betas"], (0.9, 0.999))


def test_rng_states_restored_by_load_replay_the_same_numbers(tmp_path: Path) -> None:
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    ckd.save(tmp_path / "ck", {"rng": state})
    expected = (torch.rand(3), random.random(), np.random.rand(2))
    target: dict[str, Any] = {"rng": None}
    ckd.load(tmp_path / "ck", target)
    torch.set_rng_state(target["rng"]["torch"])
    random.setstate(target["rng"]["python"])
    np.random.set_state(target["rng"]["numpy"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1]
    assert np.array_equal(np.random.rand(2), expected[2])


class _Counter:
    """A DCP ``Stateful``: saved through ``state_dict``, loaded through its twin."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.tensor = torch.full((2,), float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "tensor": self.tensor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["value"]
        self.tensor = state["tensor"]


def test_stateful_objects_are_saved_and_loaded_like_dcp_does(tmp_path: Path) -> None:
    ckd.save(tmp_path / "ck", {"app": _Counter(7), "step": 1})
    counter = _Counter(0)
    target = {"app": counter, "step": 0}
    ckd.load(tmp_path / "ck", target)
    assert target["app"] is counter
    assert counter.value == 7
    assert counter.tensor.tolist() == [7.0, 7.0]


def test_load_refuses_missing_keys_and_other_shapes_or_dtypes(tmp_path: Path) -> None:
    ckd.save(tmp_path / "ck", {"w": torch.zeros(3), "step": 1})
    with pytest.raises(KeyError, match=r"state\['other'\]: not in the checkpoint"):
        ckd.load(tmp_path / "ck", {"other": 1})
    with pytest.raises(ValueError, match=r"state\['w'\] is float32 \[4\]"):
        ckd.load(tmp_path / "ck", {"w": torch.zeros(4)})
    with pytest.raises(ValueError, match="float64"):
        ckd.load(tmp_path / "ck", {"w": torch.zeros(3, dtype=torch.float64)})
    with pytest.raises(ckptkit.CheckpointNotFoundError):
        ckd.load(tmp_path / "nothing", {"w": torch.zeros(3)})


def test_saving_over_a_checkpoint_replaces_it_whole(tmp_path: Path) -> None:
    ckd.save(tmp_path / "ck", {"w": torch.zeros(3), "old": 1})
    ckd.save(tmp_path / "ck", {"w": torch.ones(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    state = ckptkit.load(tmp_path / "ck").state
    assert list(state) == ["w"]
    assert state["w"].tolist() == [1.0, 1.0, 1.0]


def test_save_refuses_a_path_holding_something_else(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for path in (tmp_path / "data", tmp_path / "file"):
        with pytest.raises(FileExistsError, match="remove it or save to another path"):
            ckd.save(path, {"w": torch.zeros(1)})
    assert (tmp_path / "data" / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_unsupported_leaves_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(ckptkit.SerializationError, match=r"state\['bad'\]"):
        ckd.save(tmp_path / "ck", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_ranks_with_different_values_under_one_key_are_refused() -> None:
    trees = [split_state({"a": 1, "r0": 5})[0], split_state({"a": 2, "r1": 6})[0]]
    with pytest.raises(
        ckptkit.SerializationError,
        match=r"state\['a'\] differs between rank 0 and rank 1",
    ):
        merge_trees(trees)
    same = [split_state({"a": 1, "r0": 5})[0], split_state({"a": 1, "r1": 6})[0]]
    merged = merge_trees(same)
    assert [pair[0] for pair in merged.tree["dict"]] == ["a", "r0", "r1"]
    with pytest.raises(ckptkit.SerializationError, match="tensor 't' differs"):
        merge_trees([SavedTree(None, [], {"t": "1"}), SavedTree(None, [], {"t": "2"})])


def test_single_file_checkpoint_loads_into_a_state_and_consolidate_inverts(
    tmp_path: Path,
) -> None:
    state = _state()
    ckptkit.save(tmp_path / "one.ckpt", state)
    target = {"model": {k: torch.zeros_like(v) for k, v in state["model"].items()}}
    target["rng"] = None
    ckd.load(tmp_path / "one.ckpt", target)
    _same(target["model"], dict(state["model"]))
    _same(target["rng"], state["rng"])
    ckd.save(tmp_path / "ck", state, schema="s")
    info = ckd.consolidate(tmp_path / "ck", tmp_path / "back.ckpt")
    assert info.schema == "s"
    _same(ckptkit.load(tmp_path / "back.ckpt", verify="full").state, state)


def test_single_file_of_container_format_1_loads_into_a_state(tmp_path: Path) -> None:
    """Files written before format 2 (JSON tree in the header) still fill states."""
    golden = FIXTURES / "format-1" / "v1.0-complete.ckpt"
    shutil.copy(golden, tmp_path / "old.ckpt")
    expected = golden_states.state_1_0()
    target: dict[str, Any] = {
        "model": {k: torch.zeros_like(v) for k, v in expected["model"].items()},
        "optimizer": None,
        "progress": {"epoch": 0, "step": 0},
    }
    checkpoint = ckd.load(tmp_path / "old.ckpt", target)
    assert checkpoint.info.format_version == 1
    _same(target["model"], expected["model"])
    _same(target["optimizer"], expected["optimizer"])
    assert target["progress"] == {"epoch": 3, "step": 120}


def test_single_file_with_values_a_sharded_state_cannot_hold_is_incompatible(
    tmp_path: Path,
) -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    ckptkit.save(tmp_path / "one.ckpt", {"w": torch.ones(2), "log": {"at": when}})
    with pytest.raises(ckptkit.CheckpointIncompatibleError) as caught:
        ckd.load(tmp_path / "one.ckpt", {"w": torch.zeros(2), "log": None})
    assert "state['log']['at'] is of type datetime.datetime" in caught.value.reason
    assert "load this file with ckptkit.load" in caught.value.reason
    assert ckptkit.load(tmp_path / "one.ckpt").state["log"]["at"] == when


def test_ckptkit_load_of_a_folder_selects_keys_and_refuses_mmap(tmp_path: Path) -> None:
    ckd.save(tmp_path / "ck", _state())
    part = ckptkit.load(tmp_path / "ck", keys=["model.b", "step"]).state
    assert part == {"model": {"b": part["model"]["b"]}, "step": 10**20}
    assert part["model"]["b"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="mmap"):
        ckptkit.load(tmp_path / "ck", mmap=True)


def test_plain_dcp_with_ckptkit_storage_stores_values_without_pickle(
    tmp_path: Path,
) -> None:
    import torch.distributed.checkpoint as dcp

    state = {"w": torch.ones(3), "optim": {"lr": 0.5, "groups": [{"eps": 1e-8}]}}
    with pytest.warns(UserWarning, match="torch.distributed is disabled"):
        dcp.save(state, storage_writer=ckd.StorageWriter(tmp_path / "ck"))
    _same(ckptkit.load(tmp_path / "ck").state, state)
    target = {"w": torch.zeros(3), "optim": {"lr": 0.0, "groups": [{"eps": 0.0}]}}
    with pytest.warns(UserWarning, match="torch.distributed is disabled"):
        dcp.load(target, storage_reader=ckd.StorageReader(tmp_path / "ck"))
    assert target["optim"] == {"lr": 0.5, "groups": [{"eps": 1e-8}]}
    assert target["w"].tolist() == [1.0, 1.0, 1.0]
    assert b"pickle" not in (tmp_path / "ck" / "ckptkit-sharded.json").read_bytes()


def test_loading_works_with_every_unpickler_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state()
    ckd.save(tmp_path / "ck", state)

    def refuse(*args: object, **kwargs: object) -> None:
        msg = "pickle is disabled in this test"
        raise AssertionError(msg)

    for module, name in (
        (pickle, "loads"),
        (pickle, "load"),
        (pickle, "Unpickler"),
        (torch, "load"),
        (c10d, "_unpickler"),  # even the process group's own object transport
    ):
        monkeypatch.setattr(module, name, refuse)
    _same(ckptkit.load(tmp_path / "ck", verify="full").state, state)
    target: dict[Any, Any] = {"model": {"w": torch.zeros(4, 3)}, "rng": None}
    ckd.load(tmp_path / "ck", target)
    _same(target["rng"], state["rng"])


def test_one_flipped_bit_in_a_shard_names_that_shard(tmp_path: Path) -> None:
    ckd.save(tmp_path / "ck", {"w": torch.randn(64)})
    shard = tmp_path / "ck" / "shard-00000.ckpt"
    flip_tensor_bit(shard)  # in the chunk's bytes (format 2: the skeleton is last)
    with pytest.raises(ckptkit.ChecksumMismatchError) as caught:
        ckd.load(tmp_path / "ck", {"w": torch.zeros(64)})
    assert caught.value.path == str(shard)
    report = ckptkit.validate(tmp_path / "ck")
    assert (report.ok, report.kind) == (False, "corrupted")
    assert report.reason.startswith("shard-00000.ckpt: checksum mismatch")
    assert ckptkit.validate(tmp_path / "ck", level="quick").ok


def test_one_flipped_bit_in_a_shards_skeleton_names_that_shard(tmp_path: Path) -> None:
    """No chunk read covers a shard's own skeleton; it is checked all the same."""
    ckd.save(tmp_path / "ck", {"w": torch.randn(64)})
    shard = tmp_path / "ck" / "shard-00000.ckpt"
    flip_bit(shard, shard.stat().st_size * 8 - 3)  # the skeleton is the last entry
    with pytest.raises(ckptkit.ChecksumMismatchError) as caught:
        ckd.load(tmp_path / "ck", {"w": torch.zeros(64)})
    assert caught.value.path == str(shard)
    for level in ("quick", "full"):
        report = ckptkit.validate(tmp_path / "ck", level=level)
        assert (report.ok, report.kind) == (False, "corrupted")
        assert report.reason.startswith("shard-00000.ckpt: checksum mismatch")


def test_migrate_cli_points_a_sharded_folder_to_migration_on_load(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from ckptkit.cli import app

    ckd.save(tmp_path / "ck", {"w": torch.zeros(2)})
    result = CliRunner().invoke(
        app, ["migrate", "--registry", "nowhere:registry", str(tmp_path / "ck")]
    )
    assert result.exit_code == 1
    assert "is a sharded checkpoint; migrate it on load" in result.output
