"""ckptkit with a big Python state (a metrics history) against torch.save/torch.load.

Run: python bench/bench_python_state.py [--entries 100000] [--before SRC]

The state is ``{"history": [{"step", "epoch", "loss", "lr", "grad_norm"}, ...]}``:
no tensors, only the small dicts a training loop appends to. Prints the best of
``--repeat`` wall times and the ratios to torch in the same run (the machine is
noisy: compare ratios). Both writers fsync their file. ``torch.load`` is timed
as it runs by default (``weights_only=True``, the safe unpickler) and, for
reference, with ``weights_only=False`` (the unsafe C unpickler ckptkit never
uses). ``--before SRC`` also measures another ckptkit (the ``src`` folder of an
older checkout, e.g. ``git worktree add /tmp/i13-before main``) in a child
process, against its own torch figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Callable


def make_history(entries: int) -> dict[str, Any]:
    """A metrics history: one small dict per logged step."""
    rng = random.Random(0)
    return {
        "history": [
            {
                "step": step,
                "epoch": step // 1000,
                "loss": rng.random(),
                "lr": 3e-4 * (1 - step / entries),
                "grad_norm": rng.random() * 5,
            }
            for step in range(entries)
        ]
    }


def timed(action: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` wall times (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def _torch_save(state: object, path: Path) -> None:
    torch.save(state, path)
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def measure(entries: int, repeat: int, folder: Path) -> dict[str, float]:
    """Times (s) and sizes (bytes) of torch and this ckptkit on one state."""
    state = make_history(entries)
    ours, theirs = folder / "history.ckpt", folder / "history.pt"
    figures = {
        "torch_save": timed(lambda: _torch_save(state, theirs), repeat),
        "ckptkit_save": timed(lambda: ckptkit.save(ours, state), repeat),
        "torch_load": timed(lambda: torch.load(theirs), repeat),
        "torch_load_unsafe": timed(
            lambda: torch.load(theirs, weights_only=False),
            repeat,
        ),
        "ckptkit_load": timed(lambda: ckptkit.load(ours, verify="full"), repeat),
        "torch_bytes": theirs.stat().st_size,
        "ckptkit_bytes": ours.stat().st_size,
    }
    if ckptkit.load(ours).state != state:
        msg = "ckptkit did not load the state it saved"
        raise AssertionError(msg)
    return figures


def report(label: str, f: dict[str, float]) -> None:
    """Print one ckptkit's figures as ratios to torch's, measured beside them."""
    print(f"\n{label}")
    print(
        f"  save: ckptkit {f['ckptkit_save']:.3f} s, torch.save {f['torch_save']:.3f} s"
        f" -> {f['ckptkit_save'] / f['torch_save']:.2f}x"
    )
    print(
        f"  load: ckptkit {f['ckptkit_load']:.3f} s, torch.load {f['torch_load']:.3f} s"
        f" -> {f['ckptkit_load'] / f['torch_load']:.2f}x; torch.load(weights_only="
        f"False) {f['torch_load_unsafe']:.3f} s -> "
        f"{f['ckptkit_load'] / f['torch_load_unsafe']:.2f}x"
    )
    print(
        f"  size: ckptkit {f['ckptkit_bytes'] / 1e6:.2f} MB, torch.save "
        f"{f['torch_bytes'] / 1e6:.2f} MB -> {f['ckptkit_bytes'] / f['torch_bytes']:.2f}x"
    )


def main() -> None:
    """Measure this ckptkit (and, with ``--before``, another) against torch."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", help="src folder of another ckptkit to measure")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as folder:
        figures = measure(args.entries, args.repeat, Path(folder))
    if args.json:  # the child run of --before
        print(json.dumps(figures))
        return
    print(f"state: a list of {args.entries} dicts of 5 numbers (no tensors)")
    if args.before:
        env = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve())}
        command = [sys.executable, __file__, "--json", "--entries", str(args.entries)]
        command += ["--repeat", "1"]  # the old codec takes seconds per call
        child = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True
        )
        report(f"before ({args.before})", json.loads(child.stdout))
    report(f"this ckptkit ({Path(ckptkit.__file__).parent})", figures)


if __name__ == "__main__":
    main()
