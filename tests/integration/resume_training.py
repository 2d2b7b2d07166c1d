"""A tiny training loop that can stop after k steps and resume in a new process.

Usage: python resume_training.py CHECKPOINT TOTAL_STEPS [STOP_AFTER]
Without STOP_AFTER it resumes from CHECKPOINT (if it exists) and finishes.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch

import ckptkit


def build() -> tuple[
    torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler
]:
    """Model, optimizer and scheduler with deterministic initial weights."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 2),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    return model, optimizer, scheduler


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: object
) -> None:
    """One step on a batch drawn from every RNG (torch, numpy, python)."""
    noise = float(np.random.rand()) + random.random()
    inputs = torch.randn(4, 8) + noise
    targets = torch.randint(0, 2, (4,))
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()  # type: ignore[attr-defined]


def main() -> None:
    path, total = Path(sys.argv[1]), int(sys.argv[2])
    stop_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    model, optimizer, scheduler = build()
    step = 0
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    if stop_after is None and path.exists():
        state = ckptkit.load(path, verify="full").state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        step = state["step"]
    while step < total:
        train_step(model, optimizer, scheduler)
        step += 1
        if step == stop_after:
            break
    ckptkit.save(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "step": step,
        },
        status="complete" if step == total else "in_progress",
    )


if __name__ == "__main__":
    main()
