"""CheckpointManager: how long a training loop is blocked per save, async vs sync.

Run: python bench/bench_manager.py [--gib 1.0] [--saves 7] [--device cpu|cuda]
     [--train-factor 2.0] [--dir bench-output]

In one run, on one state of about ``--gib`` GiB (model + optimizer-like tensors):

- sync: ``CheckpointManager(async_save=False)``: ``save`` returns once the step is
  written, fsynced, read back in full and retention is done;
- async: ``CheckpointManager(async_save=True)``: ``save`` returns once the state
  is copied to host memory (pinned when on a GPU); the loop then "trains" for
  ``--train-factor`` times the sync save time (a sleep: the host is idle while a
  GPU computes; on ``--device cuda`` real matmuls run on the GPU) so the write
  finishes in the background, as in a loop that checkpoints every few minutes.

Prints the time blocked per save, split into waiting for the previous save and
the copy (the first async save also allocates the host buffer, so it is reported
apart), the ratio async / sync, and the throughput of ``restore`` (full
verification, from the page cache).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from bench_checkpoint import make_state

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Callable


def train_for(seconds: float, device: str) -> None:
    """Stand-in for training steps: idle host (sleep) or a busy GPU."""
    if device == "cpu":
        time.sleep(seconds)
        return
    a = torch.randn(4096, 4096, device=device)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        a = torch.tanh(a @ a)
        torch.cuda.synchronize()


def _timed_saves(
    mgr: ckptkit.CheckpointManager,
    state: dict[str, object],
    saves: int,
    between: Callable[[], None],
) -> tuple[list[float], list[float]]:
    """Per save: seconds waiting for the previous save, seconds inside ``save``.

    ``save`` itself waits for the previous save first; calling ``wait`` just
    before it splits the loop's blocked time into those two parts.
    """
    waits: list[float] = []
    inside: list[float] = []
    model = state["model"]
    if not isinstance(model, dict):
        raise TypeError(model)
    first = next(iter(model.values()))
    for step in range(saves):
        between()
        gc.collect()
        start = time.perf_counter()
        mgr.wait()
        middle = time.perf_counter()
        mgr.save(step, state, metrics={"loss": 1.0 / (step + 1)})
        waits.append(middle - start)
        inside.append(time.perf_counter() - middle)
        first.add_(1)  # the loop changes its tensors at once: allowed
        state["step"] = step + 1
    return waits, inside


def _best_restore(mgr: ckptkit.CheckpointManager, device: str) -> float:
    best = float("inf")
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        checkpoint = mgr.restore(map_location=device)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        del checkpoint
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--saves", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--train-factor",
        type=float,
        default=2.0,
        help="'training' time between async saves, in sync save times",
    )
    parser.add_argument("--dir", default="bench-output")
    args = parser.parse_args()
    root = Path(args.dir) / "manager"
    shutil.rmtree(root, ignore_errors=True)
    model = {
        k: v.to(args.device) for k, v in make_state(int(args.gib * (1 << 30))).items()
    }
    state: dict[str, object] = {"model": model, "step": 0}
    nbytes = sum(t.numel() * t.element_size() for t in model.values())
    gib = nbytes / (1 << 30)
    print(f"state: {len(model)} tensors, {gib:.2f} GiB on {args.device}")
    print(f"{args.saves} saves with each manager")

    with ckptkit.CheckpointManager(root / "sync", keep_last=2) as mgr:
        _, sync = _timed_saves(mgr, state, args.saves, lambda: None)
    sync_s = statistics.median(sync)
    train_s = args.train_factor * sync_s

    with ckptkit.CheckpointManager(root / "async", keep_last=2, async_save=True) as mgr:
        waits, copies = _timed_saves(
            mgr, state, args.saves, lambda: train_for(train_s, args.device)
        )
        start = time.perf_counter()
        mgr.wait()
        tail_s = time.perf_counter() - start
        pinned = mgr._buffer.is_pinned  # noqa: SLF001 - reported, not used
        restore_s = _best_restore(mgr, args.device)

    blocked = [w + c for w, c in zip(waits, copies, strict=True)]
    steady = statistics.median(blocked[1:])
    steady_copy = statistics.median(copies[1:])
    print("\nblocked per save (median of the saves after the first; wall seconds)")
    print(
        f"  sync  (write+fsync+full read-back+retention) {sync_s:7.3f} s   "
        f"{gib / sync_s:5.2f} GiB/s   1.00x"
    )
    print(
        f"  async (wait for the previous + copy)         {steady:7.3f} s   "
        f"{steady / sync_s:.3f}x sync   (aim < 0.10x)"
    )
    print(
        f"  async, the copy alone                        {steady_copy:7.3f} s   "
        f"{steady_copy / sync_s:.3f}x sync   {gib / steady_copy:5.2f} GiB/s"
    )
    print(
        f"  async, first save (allocates the buffer)     {blocked[0]:7.3f} s   "
        f"{blocked[0] / sync_s:.3f}x sync"
    )
    print(f"  sync per save:  {', '.join(f'{b:.3f}' for b in sync)} s")
    print(f"  async copies:   {', '.join(f'{b:.3f}' for b in copies)} s")
    print(f"  async waits:    {', '.join(f'{b:.3f}' for b in waits)} s")
    print(
        f"  host buffer pinned: {pinned}; 'training' between saves {train_s:.2f} s; "
        f"the last async save was durable {tail_s:.3f} s after save() returned"
    )
    print(
        f"\nrestore (newest step, full verification, page cache, best of 3): "
        f"{restore_s:.3f} s  {gib / restore_s:.2f} GiB/s"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
