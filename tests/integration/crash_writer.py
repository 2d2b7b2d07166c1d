"""Child process for the crash test: overwrite one checkpoint forever."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import ckptkit


def state_for(generation: int) -> dict[str, object]:
    """A state whose every byte depends on the generation (checkable after a kill)."""
    return {
        "generation": generation,
        "big": torch.full((256, 1024), float(generation)),
        "small": [torch.arange(10) + generation, {"g": str(generation)}],
    }


def main() -> None:
    target = Path(sys.argv[1])
    generation = int(sys.argv[2])
    while True:
        ckptkit.save(target, state_for(generation))
        sys.stdout.write(f"{generation}\n")
        sys.stdout.flush()
        generation += 1


if __name__ == "__main__":
    main()
