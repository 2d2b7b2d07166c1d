"""Child process for the folder-lock tests: a manager that holds its folder.

Usage: ``manager_lock_child.py DIR MODE``. MODE ``hold`` opens the manager, saves
step 0, prints ``holding`` and waits for a line on stdin before closing. MODE
``train`` saves steps 0..19 (asynchronously, with retention) and prints ``done``;
refused by another manager, it prints ``refused: <message>`` and exits 3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import ckptkit


def main() -> int:
    directory, mode = Path(sys.argv[1]), sys.argv[2]
    try:
        mgr = ckptkit.CheckpointManager(directory, keep_last=2, async_save=True)
    except ckptkit.FolderLockedError as error:
        print(f"refused: {error}", flush=True)
        return 3
    with mgr:
        if mode == "hold":
            mgr.save(0, {"w": torch.zeros(4)})
            mgr.wait()
            print("holding", flush=True)
            sys.stdin.readline()
            return 0
        for step in range(20):
            mgr.save(step, {"w": torch.full((256, 256), float(step))})
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
