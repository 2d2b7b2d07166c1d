"""CheckpointManager: how long a training loop is blocked per save, async vs sync.

Run: python bench/bench_manager.py [--gib 1.0] [--saves 5] [--device cpu|cuda]
     [--dir bench-output]

In one run, on one state of about ``--gib`` GiB (model + optimizer-like tensors):

- sync: ``CheckpointManager(async_save=False)``: ``save`` returns once the step is
  written, fsynced, read back in full and retention is done;
- async: ``CheckpointManager(async_save=True)``: ``save`` returns once the state
  is copied to host memory (pinned when on a GPU); the loop then "trains" for
  ``1.25 x`` the sync save time (a sleep: the host is idle while a GPU computes;
  on ``--device cuda`` real matmuls run on the GPU) so the write finishes in the
  background, as in a real loop that checkpoints every few minutes.

Prints the time blocked per save (the first async save also allocates the host
buffer, so steady state is reported apart), the ratio async / sync, and the
throughput of ``restore`` (full verification, from the page cache).
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


def _train(seconds: float, device: str) -> None:
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
) -> list[float]:
    blocked: list[float] = []
    model = state["model"]
    if not isinstance(model, dict):
        raise TypeError(model)
    first = next(iter(model.values()))
    for step in range(saves):
        between()
        gc.collect()
        start = time.perf_counter()
        mgr.save(step, state, metrics={"loss": 1.0 / (step + 1)})
        blocked.append(time.perf_counter() - start)
        first.add_(1)  # the loop changes its tensors at once: allowed
        state["step"] = step + 1
    return blocked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--device", default="cpu")
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
        sync = _timed_saves(mgr, state, args.saves, lambda: None)
    sync_s = statistics.median(sync)
    train_s = 1.25 * sync_s

    with ckptkit.CheckpointManager(root / "async", keep_last=2, async_save=True) as mgr:
        blocked = _timed_saves(
            mgr, state, args.saves, lambda: _train(train_s, args.device)
        )
        start = time.perf_counter()
        mgr.wait()
        tail_s = time.perf_counter() - start
        pinned = mgr._buffer.is_pinned  # noqa: SLF001 - reported, not used
        steady = statistics.median(blocked[1:]) if len(blocked) > 1 else blocked[0]

        restore_s = float("inf")
        for _ in range(3):
            gc.collect()
            start = time.perf_counter()
            checkpoint = mgr.restore(map_location=args.device)
            restore_s = min(restore_s, time.perf_counter() - start)
            del checkpoint

    print("\nblocked per save (median; wall seconds the loop waits in save())")
    print(
        f"  sync  (write+fsync+full read-back+retention) {sync_s:7.3f} s   "
        f"{gib / sync_s:5.2f} GiB/s   1.00x"
    )
    print(
        f"  async, first save (allocates the buffer)   {blocked[0]:7.3f} s   "
        f"{blocked[0] / sync_s:.3f}x sync"
    )
    print(
        f"  async, steady state                        {steady:7.3f} s   "
        f"{steady / sync_s:.3f}x sync   (aim < 0.10x)"
    )
    print(
        f"  async per-save times: {', '.join(f'{b:.3f}' for b in blocked)} s; "
        f"host buffer pinned: {pinned}"
    )
    print(
        f"  the last async save became durable {tail_s:.3f} s after save() returned "
        f"(background write + read-back; 'training' between saves: {train_s:.2f} s)"
    )
    print(
        f"\nrestore (newest step, full verification, page cache, best of 3): "
        f"{restore_s:.3f} s  {gib / restore_s:.2f} GiB/s"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
