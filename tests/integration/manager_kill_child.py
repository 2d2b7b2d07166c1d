"""Child process for the manager kill test: "train" forever with async saves.

Usage: ``manager_kill_child.py DIR MODE``. Resumes from the newest valid step,
then saves every step asynchronously and changes its tensors in place right after
``save`` returns, printing each step once ``save`` has returned. MODE ``midwrite``
makes the second write of this process stop halfway through its file (after the
first tensor), print ``midwrite`` and wait to be killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

import ckptkit
import ckptkit._file.writer as save_module
import ckptkit.manager._file_steps as writing_module

KEEP_LAST = 2


def state_for(step: int) -> dict[str, Any]:
    """A state whose every byte depends on the step (checkable after a kill)."""
    return {
        "step": step,
        "big": torch.full((2048, 2048), float(step)),
        "small": [torch.arange(10) + step, {"s": str(step)}],
    }


def _advance(state: dict[str, Any], step: int) -> None:
    """One "training step": change the saved tensors in place."""
    state["step"] = step
    state["big"].fill_(float(step))
    state["small"][0].copy_(torch.arange(10) + step)
    state["small"][1]["s"] = str(step)


def _stop_second_write_halfway() -> None:
    real_write = save_module.write_encoded
    real_entry = save_module._write_entry
    calls = 0

    def hang_after_first_tensor(*args: Any, **kwargs: Any) -> Any:
        digest = real_entry(*args, **kwargs)
        sys.stdout.write("midwrite\n")
        sys.stdout.flush()
        time.sleep(600)
        return digest

    def counting_write(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first write completes
            save_module._write_entry = hang_after_first_tensor
        return real_write(*args, **kwargs)

    setattr(writing_module, "write_encoded", counting_write)  # noqa: B010


def main() -> None:
    directory, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "midwrite":
        _stop_second_write_halfway()
    mgr = ckptkit.CheckpointManager(directory, keep_last=KEEP_LAST, async_save=True)
    step = 0
    if mgr.latest() is not None:
        step = int(mgr.restore().state["step"]) + 1
    state = state_for(step)
    while True:
        mgr.save(step, state, metrics={"loss": 1.0 / (step + 1)})
        sys.stdout.write(f"{step}\n")
        sys.stdout.flush()
        step += 1
        _advance(state, step)


if __name__ == "__main__":
    main()
