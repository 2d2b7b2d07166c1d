"""Migrations (``registry=``) when loading sharded checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import ckptkit
import ckptkit.distributed as ckd


def _registry(step: Any) -> ckptkit.MigrationRegistry:
    registry = ckptkit.MigrationRegistry(schema="demo", current="1.1")
    registry.register("1.0", "1.1", step)
    return registry


def _renamed(state: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: "w" is called "weight", states count epochs, a bias appears."""
    state["weight"] = state.pop("w")
    state["epoch"] = 0
    state["bias"] = torch.zeros(3)
    return state


def _doubled(state: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: weights are stored doubled (needs the tensor data)."""
    state["w"] = state["w"] * 2
    return state


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.Tensor]:
    weight = torch.randn(3)
    ckd.save(tmp_path / "ck", {"w": weight, "step": 5}, schema="demo", version="1.0")
    return tmp_path / "ck", weight


def test_structural_migrations_apply_on_a_sharded_load(
    saved: tuple[Path, torch.Tensor],
) -> None:
    path, weight = saved
    target = {"weight": torch.zeros(3), "bias": torch.ones(3), "epoch": -1, "step": 0}
    checkpoint = ckd.load(path, target, registry=_registry(_renamed))
    assert [r.to_version for r in checkpoint.applied] == ["1.1"]
    assert torch.equal(target["weight"], weight)
    assert target["bias"].tolist() == [0.0, 0.0, 0.0]
    assert (target["epoch"], target["step"]) == (0, 5)


def test_a_step_that_computes_from_stored_tensors_is_refused_on_a_sharded_load(
    saved: tuple[Path, torch.Tensor],
) -> None:
    path, _ = saved
    with pytest.raises(ckptkit.MigrationError, match=r"state\['w'\]: a migration step"):
        ckd.load(path, {"w": torch.zeros(3)}, registry=_registry(_doubled))


def test_whole_state_loads_run_every_migration(
    saved: tuple[Path, torch.Tensor],
) -> None:
    path, weight = saved
    checkpoint = ckptkit.load(path, registry=_registry(_doubled))
    assert torch.equal(checkpoint.state["w"], weight * 2)
    assert checkpoint.info.version == "1.0"
    assert [r.step for r in checkpoint.applied] == [f"{__name__}._doubled"]


def test_a_registry_of_another_schema_is_refused(
    saved: tuple[Path, torch.Tensor],
) -> None:
    path, _ = saved
    other = ckptkit.MigrationRegistry(schema="other", current="1.0")
    with pytest.raises(ckptkit.SchemaMismatchError):
        ckd.load(path, {"w": torch.zeros(3)}, registry=other)
