"""CheckpointManager: how long a training loop is blocked, how fast steps() answers.

Run: python bench/bench_manager.py [--case all|tensors|history] [--gib 1.0]
     [--saves 5] [--history 100000] [--device cpu|cuda] [--train-factor 2.0]
     [--dir bench-output] [--before SRC]

Cases, all in one run:

- ``tensors``: one state of about ``--gib`` GiB (model + optimizer-like tensors).
  sync: ``CheckpointManager(async_save=False)``; ``save`` returns once the step is
  written, fsynced, read back in full and retention is done. async:
  ``async_save=True``; ``save`` returns once the state is copied to host memory
  (pinned when on a GPU); the loop then "trains" for ``--train-factor`` times the
  sync save time (a sleep: the host is idle while a GPU computes; on ``--device
  cuda`` real matmuls run on the GPU), so each write ends in the background.
  Reported as ratios to the sync save: the first async save of a fresh manager
  (its host buffer is new), the later ones (the buffer is warm), and the first
  save of a resumed run (a new manager that restored the newest step first).
- ``history``: a small model plus a metrics history of ``--history`` small dicts
  (what a trainer keeps in its state). The sync save, the time an async save
  blocks the loop, and what ``steps()``, ``latest()`` and ``best()`` of a new
  manager cost per step over ``--saves`` such steps.

``--before SRC`` runs every case twice, back to back in this run: first with the
ckptkit found at SRC (e.g. ``git worktree add /tmp/before main``, SRC
``/tmp/before/src``), then with this checkout's, and prints both side by side.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_checkpoint import make_state

import ckptkit

_JSON_MARK = "BENCH-JSON "


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


def _blocked(mgr: ckptkit.CheckpointManager, step: int, state: Any) -> float:
    """Seconds the loop spends in wait() + save() (the previous save included)."""
    gc.collect()
    start = time.perf_counter()
    mgr.wait()
    mgr.save(step, state, metrics={"loss": 1.0 / (step + 1)})
    return time.perf_counter() - start


def _tensors(args: argparse.Namespace, root: Path) -> dict[str, float]:
    nbytes = int(args.gib * (1 << 30))
    model = {k: v.to(args.device) for k, v in make_state(nbytes).items()}
    state: dict[str, object] = {"model": model, "step": 0}
    first = next(iter(model.values()))

    def advance(step: int) -> None:
        first.add_(1)  # the loop changes its tensors at once: allowed
        state["step"] = step + 1

    sync: list[float] = []
    with ckptkit.CheckpointManager(root / "sync", keep_last=2) as mgr:
        for step in range(args.saves):
            sync.append(_blocked(mgr, step, state))
            advance(step)
    sync_s = statistics.median(sync)
    train_s = args.train_factor * sync_s
    blocked: list[float] = []
    with ckptkit.CheckpointManager(root / "async", keep_last=2, async_save=True) as mgr:
        for step in range(args.saves):
            train_for(train_s, args.device)
            blocked.append(_blocked(mgr, step, state))
            advance(step)
        mgr.wait()
        start = time.perf_counter()
        mgr.restore(map_location=args.device)
        restore_s = time.perf_counter() - start
    # A resumed run: a new manager restores the newest step, trains, saves.
    resumed = ckptkit.CheckpointManager(root / "sync", keep_last=2, async_save=True)
    with resumed as mgr:
        state = dict(mgr.restore(map_location=args.device).state)
        train_for(train_s, args.device)
        resumed_s = _blocked(mgr, args.saves, state)
    gib = nbytes / (1 << 30)
    return {
        "gib": gib,
        "sync_s": sync_s,
        "first_async_s": blocked[0],
        "later_async_s": statistics.median(blocked[1:]),
        "resumed_first_async_s": resumed_s,
        "restore_gib_per_s": gib / restore_s,
    }


def _history_state(entries: int) -> dict[str, object]:
    return {
        "model": {f"w{i}": torch.randn(256, 256) for i in range(4)},
        "history": [
            {"step": i, "loss": 1.0 / (i + 1), "lr": 3e-4, "tag": "train"}
            for i in range(entries)
        ],
    }


def _history(args: argparse.Namespace, root: Path) -> dict[str, float]:
    state = _history_state(args.history)
    folder = root / "history"
    with ckptkit.CheckpointManager(
        folder, keep_last=args.saves, best_metric="loss"
    ) as mgr:
        sync = [_blocked(mgr, step, state) for step in range(args.saves)]
    start = time.perf_counter()
    with ckptkit.CheckpointManager(folder, best_metric="loss") as mgr:
        listed = (mgr.steps(), mgr.latest(), mgr.best())
    listing_s = time.perf_counter() - start
    if listed[0] != list(range(args.saves)):
        raise RuntimeError(listed)
    blocked: list[float] = []
    train_s = args.train_factor * statistics.median(sync)
    with ckptkit.CheckpointManager(
        root / "history-async", keep_last=2, async_save=True
    ) as mgr:
        for step in range(args.saves):
            train_for(train_s, "cpu")
            blocked.append(_blocked(mgr, step, state))
            state["history"].append({"step": step})  # type: ignore[attr-defined]
    return {
        "history_entries": args.history,
        "history_file_mib": sum(p.stat().st_size for p in folder.glob("step-*.ckpt"))
        / args.saves
        / (1 << 20),
        "history_sync_s": statistics.median(sync),
        "history_async_blocked_s": statistics.median(blocked),
        "history_listing_ms_per_step": 1000 * listing_s / args.saves,
    }


def _measure(args: argparse.Namespace) -> dict[str, float]:
    root = Path(args.dir) / "manager"
    shutil.rmtree(root, ignore_errors=True)
    figures: dict[str, float] = {}
    try:
        if args.case in ("all", "history"):
            figures.update(_history(args, root))
        if args.case in ("all", "tensors"):
            figures.update(_tensors(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def _ratio(seconds: float, sync: float, aim: str = "") -> str:
    text = f"{seconds:.3f} s  {seconds / sync:.3f}x sync"
    return f"{text}  (aim <= {aim})" if aim else text


def _lines(figures: dict[str, float]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if "history_sync_s" in figures:
        sync = figures["history_sync_s"]
        entries = int(figures["history_entries"])
        rows += [
            (
                f"history of {entries} dicts: file",
                f"{figures['history_file_mib']:.1f} MiB",
            ),
            ("history: sync save", f"{sync:.3f} s"),
            (
                "history: async save blocks the loop",
                _ratio(figures["history_async_blocked_s"], sync),
            ),
            (
                "history: new manager steps()+latest()+best()",
                f"{figures['history_listing_ms_per_step']:.1f} ms per step",
            ),
        ]
    if "sync_s" in figures:
        sync, gib = figures["sync_s"], figures["gib"]
        rows += [
            (
                f"tensors ({gib:.2f} GiB): sync save",
                f"{sync:.3f} s  {gib / sync:.2f} GiB/s",
            ),
            (
                "tensors: first async save (fresh buffer)",
                _ratio(figures["first_async_s"], sync, "0.5x"),
            ),
            (
                "tensors: later async saves (warm buffer)",
                _ratio(figures["later_async_s"], sync, "0.15x"),
            ),
            (
                "tensors: first async save after restore",
                _ratio(figures["resumed_first_async_s"], sync),
            ),
            (
                "tensors: restore (full verification)",
                f"{figures['restore_gib_per_s']:.2f} GiB/s",
            ),
        ]
    return rows


def _run_with(src: str, argv: list[str]) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, str(Path(__file__).parent)]),
    }
    done = subprocess.run(
        [sys.executable, __file__, *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith(_JSON_MARK):
            figures: dict[str, float] = json.loads(line[len(_JSON_MARK) :])
            return figures
    raise RuntimeError(done.stdout + done.stderr)


def _compare(args: argparse.Namespace, argv: list[str]) -> None:
    here = str(Path(__file__).resolve().parents[1] / "src")
    print(f"before: ckptkit from {args.before}\nafter:  ckptkit from {here}")
    before = _run_with(args.before, argv)
    after = _run_with(here, argv)
    print(f"\n{'':46s} {'before':>32s} | after")
    for (name, old), (_, new) in zip(_lines(before), _lines(after), strict=True):
        print(f"{name:46s} {old:>32s} | {new}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["all", "tensors", "history"], default="all")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--train-factor",
        type=float,
        default=2.0,
        help="'training' time between async saves, in sync save times",
    )
    parser.add_argument("--dir", default="bench-output")
    parser.add_argument("--before", help="src folder of the ckptkit to compare with")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.before:
        argv = [a for a in sys.argv[1:] if a not in ("--before", args.before)]
        _compare(args, argv)
        return
    figures = _measure(args)
    if args.json:
        print(_JSON_MARK + json.dumps(figures))
        return
    print(f"ckptkit from {Path(ckptkit.__file__).parent}")
    for name, value in _lines(figures):
        print(f"{name:46s} {value}")


if __name__ == "__main__":
    main()
