"""A legacy ``torch.save`` training checkpoint, migrated to 1.0, resumes exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

import ckptkit

TOTAL_STEPS = 7
SAVED_AT = 3


def _trainer_registry() -> ckptkit.MigrationRegistry:
    registry = ckptkit.MigrationRegistry(schema="tiny-trainer", current="1.0")

    @registry.migration("0.x", "1.0")
    def from_legacy(state: dict[str, Any]) -> dict[str, Any]:
        """0.x -> 1.0: the old trainer's flat ``*_state_dict`` keys, grouped."""
        return {
            "model": state["model_state_dict"],
            "optimizer": state["optimizer_state_dict"],
            "scheduler": state["scheduler_state_dict"],
            "progress": {"epoch": state["epoch"]},
        }

    return registry


def _build(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def _train(model: nn.Module, optimizer: Any, scheduler: Any, steps: int) -> None:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(16, 4, generator=generator)
    targets = torch.randn(16, 2, generator=generator)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()


def _resume(state: dict[str, Any]) -> list[torch.Tensor]:
    model, optimizer, scheduler = _build(seed=99)  # other initial weights
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _train(model, optimizer, scheduler, TOTAL_STEPS - SAVED_AT)
    return [p.detach().clone() for p in model.parameters()]


def test_legacy_checkpoint_migrated_to_1_0_resumes_bit_identically(
    tmp_path: Path,
) -> None:
    model, optimizer, scheduler = _build(seed=0)
    _train(model, optimizer, scheduler, SAVED_AT)
    legacy = tmp_path / "epoch-3.pth"
    torch.save(
        {
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "epoch": SAVED_AT,
        },
        legacy,
    )
    legacy_bytes = legacy.read_bytes()
    _train(model, optimizer, scheduler, TOTAL_STEPS - SAVED_AT)
    straight = [p.detach().clone() for p in model.parameters()]

    registry = _trainer_registry()
    result = ckptkit.migrate(legacy, registry)
    assert result.output == tmp_path / "epoch-3.v1.0.ckpt"
    assert legacy.read_bytes() == legacy_bytes
    migrated = ckptkit.load(result.output, verify="full")
    assert (migrated.info.version, migrated.info.schema) == ("1.0", "tiny-trainer")
    assert [(h.from_version, h.to_version) for h in migrated.info.history] == [
        ("0.x", "1.0")
    ]
    assert migrated.state["progress"] == {"epoch": SAVED_AT}
    in_memory = ckptkit.load(legacy, registry=registry).state

    for state in (migrated.state, in_memory):
        resumed = _resume(state)
        for got, want in zip(resumed, straight, strict=True):
            assert torch.equal(got, want)
