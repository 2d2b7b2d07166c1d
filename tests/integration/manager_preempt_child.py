"""Child process for the preemption test: "train" with async saves until SIGTERM.

Usage: ``manager_preempt_child.py DIR MODE``. Resumes from the newest step, then
trains forever, saving every step asynchronously with
``handle_preemption=True`` and changing its tensors in place right after ``save``
returns; prints each step once ``save`` has returned.

MODE ``aware`` checks ``mgr.preempted`` after each step: it prints ``final N``
and takes one last save of step N, after which the process must end (it prints
``still alive`` if it does not). MODE ``unaware`` never looks at the flag.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

import ckptkit

KEEP_LAST = 2


def state_for(step: int) -> dict[str, Any]:
    """A state whose every byte depends on the step (checkable afterwards)."""
    return {
        "step": step,
        "big": torch.full((1024, 1024), float(step)),
        "history": [{"step": s, "loss": 1.0 / (s + 1)} for s in range(step + 1)],
    }


def _advance(state: dict[str, Any], step: int) -> None:
    state["step"] = step
    state["big"].fill_(float(step))
    state["history"].append({"step": step, "loss": 1.0 / (step + 1)})


def main() -> None:
    directory, mode = Path(sys.argv[1]), sys.argv[2]
    mgr = ckptkit.CheckpointManager(
        directory, keep_last=KEEP_LAST, async_save=True, handle_preemption=True
    )
    step = 0
    if mgr.latest() is not None:
        step = int(mgr.restore().state["step"]) + 1
    state = state_for(step)
    print("ready", flush=True)
    while True:
        time.sleep(0.01)  # a training step
        if mode == "aware" and mgr.preempted:
            print(f"final {step}", flush=True)
            mgr.save(step, state)
            print("still alive", flush=True)
            return
        mgr.save(step, state)
        print(step, flush=True)
        step += 1
        _advance(state, step)


if __name__ == "__main__":
    main()
