"""ckptkit save/load/validate speed against the physical limit and other formats.

Run: python bench/bench_checkpoint.py [--gib 1.0] [--dir bench-output]
Prints times and ratios measured in one run (the machine is noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import safetensors.torch
import torch

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Callable


def make_state(total_bytes: int) -> dict[str, torch.Tensor]:
    """Many tensors of mixed sizes and dtypes, like a model + optimizer state."""
    generator = torch.Generator().manual_seed(0)
    sizes = [64 << 20, 16 << 20, 4 << 20, 1 << 20, 256 << 10, 4 << 10]
    dtypes = [torch.float32, torch.bfloat16, torch.float16, torch.int64]
    state: dict[str, torch.Tensor] = {}
    used, index = 0, 0
    while used < total_bytes:
        size = sizes[index % len(sizes)]
        dtype = dtypes[index % len(dtypes)]
        count = size // torch.empty(0, dtype=dtype).element_size()
        state[f"layer{index}.weight"] = torch.randn(count, generator=generator).to(
            dtype
        )
        used += size
        index += 1
    return state


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_file(path: Path) -> None:
    if path.exists():
        path.unlink()


def timed(
    action: Callable[[], object], repeat: int = 3, fresh: Path | None = None
) -> float:
    """Best of ``repeat`` wall times (seconds).

    ``fresh``: a file removed (and synced away) before each run, so every writer
    is measured writing a new file rather than paying to free the old one.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        if fresh is not None:
            drop_file(fresh)
            os.sync()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def raw_write(path: Path, state: dict[str, torch.Tensor]) -> None:
    """The physical limit: the same bytes, one file, one fsync."""
    with path.open("wb", buffering=0) as handle:
        for tensor in state.values():
            handle.write(tensor.reshape(-1).view(torch.uint8).numpy().data)
        os.fsync(handle.fileno())


def peak_rss_delta(action: Callable[[], object]) -> int:
    """Extra peak resident memory (bytes) while ``action`` runs (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    base = _status_kib("VmRSS")
    action()
    return (_status_kib("VmHWM") - base) * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default="bench-output")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(exist_ok=True)
    state = make_state(int(args.gib * (1 << 30)))
    nbytes = sum(t.numel() * t.element_size() for t in state.values())
    gib = nbytes / (1 << 30)
    print(f"state: {len(state)} tensors, {gib:.2f} GiB")
    raw, ours, pt, st = (
        folder / n for n in ("raw.bin", "a.ckpt", "a.pt", "a.safetensors")
    )

    def torch_save() -> None:
        torch.save(state, pt)
        fsync_file(pt)

    def safetensors_save() -> None:
        safetensors.torch.save_file(state, st)
        fsync_file(st)

    t_raw = timed(lambda: raw_write(raw, state), fresh=raw)
    t_save = timed(lambda: ckptkit.save(ours, {"model": state}), fresh=ours)
    t_torch = timed(torch_save, fresh=pt)
    t_st = timed(safetensors_save, fresh=st)
    t_over = timed(lambda: ckptkit.save(ours, {"model": state}))
    print("\nsave (best of 3, including fsync)")
    print(f"  raw write+fsync        {t_raw:7.3f} s  {gib / t_raw:6.2f} GiB/s  1.00x")
    for name, value in (
        ("ckptkit.save", t_save),
        ("torch.save+fsync", t_torch),
        ("safetensors+fsync", t_st),
    ):
        print(
            f"  {name:22s} {value:7.3f} s  {gib / value:6.2f} GiB/s  {value / t_raw:.2f}x raw"
        )
    print(
        f"  ckptkit.save vs torch.save: {t_save / t_torch:.2f}x time; vs safetensors: {t_save / t_st:.2f}x"
    )
    print(
        f"  ckptkit.save over an existing checkpoint (frees the old file): {t_over:.3f} s"
    )

    t_load_q = timed(lambda: ckptkit.load(ours, verify="quick"))
    t_load_f = timed(lambda: ckptkit.load(ours, verify="full"))
    t_load_m = timed(lambda: ckptkit.load(ours, verify="none", mmap=True))
    t_st_load = timed(lambda: safetensors.torch.load_file(st))
    t_pt_load = timed(lambda: torch.load(pt, weights_only=True))
    print("\nload from page cache (best of 3)")
    for name, value in (
        ("ckptkit.load quick", t_load_q),
        ("ckptkit.load full", t_load_f),
        ("ckptkit.load mmap", t_load_m),
        ("safetensors.load_file (lazy mmap)", t_st_load),
        ("torch.load", t_pt_load),
    ):
        print(
            f"  {name:34s} {value:7.3f} s  {gib / value:7.2f} GiB/s  {value / t_pt_load:.2f}x torch.load"
        )

    t_val = timed(lambda: ckptkit.validate(ours, level="full"))
    print(
        f"\nvalidate(level='full'): {t_val:.3f} s  {gib / t_val:.2f} GiB/s (page cache)"
    )

    extra = peak_rss_delta(lambda: ckptkit.save(ours, {"model": state}))
    print(
        f"extra peak RSS during save: {extra / (1 << 20):.1f} MiB = {100 * extra / nbytes:.2f}% of the state"
    )
    for path in (raw, ours, pt, st):
        drop_file(path)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
