"""Compare two ``virnucpro-app predict`` output folders, file by file.

Run: python bench/compare_runs.py BEFORE_OUTPUT AFTER_OUTPUT

Text outputs are compared byte for byte (``run_summary.json`` without its
timings; logs are left out). Each checkpoint is loaded from both folders and its state compared leaf
by leaf (``torch.equal`` for tensors); its bytes are then compared, and every run
of differing bytes that is not the ``created_at`` time or the header checksum is
printed. Used to show that a change leaves the outputs as they were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import ckptkit

_VOLATILE = (b"created_at", b"header_xxh3")
_TIMINGS = ("wall_seconds", "stage_seconds")


def _leaf_differences(left: object, right: object, where: str = "state") -> list[str]:
    if isinstance(left, torch.Tensor):
        same = (
            isinstance(right, torch.Tensor)
            and left.dtype == right.dtype
            and left.shape == right.shape
            and torch.equal(left, right)
        )
        return [] if same else [where]
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return [f"{where} (keys)"]
        return [
            d
            for k in left
            for d in _leaf_differences(left[k], right[k], f"{where}.{k}")
        ]
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        if len(left) != len(right):
            return [f"{where} (length)"]
        pairs = zip(left, right, strict=True)
        return [
            d
            for i, (a, b) in enumerate(pairs)
            for d in _leaf_differences(a, b, f"{where}[{i}]")
        ]
    return [] if left == right else [where]


def _byte_runs(left: bytes, right: bytes) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for index in range(min(len(left), len(right))):
        if left[index] != right[index]:
            if runs and index - runs[-1][1] <= 3:
                runs[-1][1] = index
            else:
                runs.append([index, index])
    return [(start, end) for start, end in runs]


def _compare_checkpoint(left: Path, right: Path) -> str:
    differences = _leaf_differences(ckptkit.load(left).state, ckptkit.load(right).state)
    if differences:
        return f"state differs at {', '.join(differences[:5])}"
    a, b = left.read_bytes(), right.read_bytes()
    if len(a) != len(b):
        return f"equal state, sizes {len(a)} and {len(b)}"
    other = [
        a[max(0, start - 30) : end + 3]
        for start, end in _byte_runs(a, b)
        if not any(mark in a[max(0, start - 40) : end] for mark in _VOLATILE)
    ]
    return f"equal state; bytes differing elsewhere than created_at/header checksum: {other}"


def _without_timings(path: Path) -> object:
    summary = json.loads(path.read_text())
    for key in _TIMINGS:
        summary.pop(key, None)
    return summary


def main() -> None:
    """Compare the two folders named on the command line and print one line a file."""
    before, after = (Path(arg) for arg in sys.argv[1:3])
    for path in sorted(p for p in before.rglob("*") if p.is_file()):
        name = path.relative_to(before)
        other = after / name
        if not other.exists():
            print(f"{name}: missing after")
        elif path.suffix == ".log":
            print(f"{name}: not compared (a log of times)")
        elif path.suffix == ".ckpt":
            print(f"{name}: {_compare_checkpoint(path, other)}")
        elif path.name == "run_summary.json":
            same = _without_timings(path) == _without_timings(other)
            print(f"{name}: {'same' if same else 'DIFFERS'} (timings left out)")
        else:
            same = path.read_bytes() == other.read_bytes()
            print(f"{name}: {'byte-identical' if same else 'DIFFERS'}")


if __name__ == "__main__":
    main()
