"""GPU check part ``checkpoint``: ``CheckpointManager`` with a training state on the GPU.

- sync: ``CheckpointManager(async_save=False)``: ``save`` returns once the step is
  written, fsynced and read back in full;
- async: ``CheckpointManager(async_save=True)``: ``save`` returns once the state
  is copied into a (pinned, on a GPU) host buffer; between saves the GPU "trains"
  (matrix products) for 1.2x a sync save, so the write ends in the background.
  Blocked time per save = waiting for the previous save + the copy; the first
  save also allocates the host buffer and is reported apart;
- the file of an async save equals a sync save's byte for byte (apart from
  ``created_at`` and the header checksum that covers it, docs/ckptkit/format.md), even
  though every GPU tensor is overwritten right after ``save`` returns.
"""

from __future__ import annotations

import json
import statistics
import struct
import time
from typing import TYPE_CHECKING

import torch
from _gpu_plan import synchronize, timed
from bench_manager import train_for

import ckptkit

if TYPE_CHECKING:
    from pathlib import Path

    from _gpu_plan import Context, Plan
    from _gpu_report import Recorder

#: The issue's goal: blocked time of an async save <= this share of a sync save.
ASYNC_GOAL = 0.05
_SIZES = (64 << 20, 16 << 20, 4 << 20, 1 << 20, 256 << 10, 4 << 10)
_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.int64)
_CHUNK = 64 << 20


def make_state(total_bytes: int, where: str) -> dict[str, torch.Tensor]:
    """Tensors of mixed sizes and dtypes made on ``where``, like weights + optimizer."""
    generator = torch.Generator(device=where).manual_seed(0)
    sizes = [size for size in _SIZES if size <= max(total_bytes // 8, _SIZES[-1])]
    state: dict[str, torch.Tensor] = {}
    used = 0
    while used < total_bytes:
        index = len(state)
        size, dtype = sizes[index % len(sizes)], _DTYPES[index % len(_DTYPES)]
        count = size // torch.empty(0, dtype=dtype).element_size()
        values = torch.randn(count, generator=generator, device=where)
        state[f"layer{index}.weight"] = values.to(dtype)
        used += size
    return state


def _parts(path: Path) -> tuple[dict, int]:
    """Header without ``created_at`` / header checksum, and where the data starts."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        top = json.loads(handle.read(length))
    metadata = top["__metadata__"]
    header = json.loads(metadata.pop("ckptkit.header"))
    header.pop("created_at")
    metadata.pop("ckptkit.header_xxh3")
    return {"top": top, "header": header}, 8 + length


def same_file(a: Path, b: Path) -> tuple[bool, str]:
    """Whether two ckptkit files hold the same header (but the time) and bytes."""
    (head_a, start_a), (head_b, start_b) = _parts(a), _parts(b)
    if head_a != head_b:
        return False, "headers differ"
    with a.open("rb") as one, b.open("rb") as two:
        one.seek(start_a)
        two.seek(start_b)
        offset = 0
        while chunk := one.read(_CHUNK):
            if chunk != two.read(len(chunk)):
                return False, f"tensor bytes differ near byte {offset}"
            offset += len(chunk)
        if two.read(1):
            return False, "lengths differ"
    return True, f"{offset / 2**30:.2f} GiB of tensor bytes equal"


def _sync(rec: Recorder, plan: Plan, state: dict, root: Path, where: str) -> float:
    with ckptkit.CheckpointManager(root / "sync", keep_last=1) as mgr:
        seconds = [
            timed(lambda s=step: mgr.save(s, state), where)[1]
            for step in range(plan.sync_saves)
        ]
        checkpoint, restore_s = timed(lambda: mgr.restore(map_location=where), where)
        del checkpoint
    median = statistics.median(seconds)
    gib = sum(t.nbytes for t in state["model"].values()) / 2**30
    rec.figure(
        "sync save (write, fsync, full read-back)",
        round(median, 3),
        "s",
        f"{gib / median:.2f} GiB/s; each: {', '.join(f'{s:.2f}' for s in seconds)}",
    )
    rec.figure(
        "restore to the device (full verification)",
        round(restore_s, 3),
        "s",
        f"{gib / restore_s:.2f} GiB/s",
    )
    return median


def _pinned_bytes(rec: Recorder, when: str) -> None:
    """Page-locked host memory torch's caching host allocator holds (GPU only).

    It rounds every block up to a power of two and keeps freed blocks cached, so
    the snapshot buffer may hold up to twice the state, and after close() too.
    """
    stats = getattr(torch.cuda, "host_memory_stats", None)
    if not torch.cuda.is_available() or stats is None:
        rec.skip(f"pinned host memory {when}")
        return
    held = stats().get("allocated_bytes.current")
    if held is None:
        rec.skip(f"pinned host memory {when}", "skipped: this torch does not say")
        return
    rec.figure(f"pinned host memory {when}", round(held / 2**30, 2), "GiB")


def _async(rec: Recorder, plan: Plan, state: dict, root: Path, where: str) -> None:
    sync_s = _sync(rec, plan, state, root, where)
    blocked, copies = [], []
    with ckptkit.CheckpointManager(root / "async", keep_last=1, async_save=True) as mgr:
        for step in range(plan.async_saves):
            if step:
                train_for(1.2 * sync_s, where)
            start = time.perf_counter()
            mgr.wait()
            middle = time.perf_counter()
            mgr.save(step, state)
            end = time.perf_counter()
            blocked.append(end - start)
            copies.append(end - middle)
            state["model"]["layer0.weight"].add_(1)  # the loop goes on at once
        pinned = mgr._steps.buffer.is_pinned  # noqa: SLF001 - reported, not used
        tail_s = timed(mgr.wait, where)[1]
        _pinned_bytes(rec, "while the manager is open")
    _pinned_bytes(rec, "after close()")
    rec.figure(
        "async save, first (allocates the host buffer)", round(blocked[0], 3), "s"
    )
    steady = statistics.median(blocked[1:])
    ratio = steady / sync_s
    rec.figure(
        "async save, blocked per save (wait + copy)",
        round(steady, 4),
        "s",
        f"{ratio:.3f}x sync; copies {', '.join(f'{c:.3f}' for c in copies)} s; "
        f"the last was durable {tail_s:.2f} s after save returned",
    )
    name = f"async blocked / sync <= {ASYNC_GOAL} with pinned staging"
    if where.startswith("cuda"):
        rec.goal(
            name, round(ratio, 4), ok=ratio <= ASYNC_GOAL, detail=f"pinned {pinned}"
        )
    else:
        rec.skip(name)


def run_checkpoint(rec: Recorder, ctx: Context) -> None:
    """The part: see the module docstring."""
    plan, where, root = ctx.plan, ctx.where, ctx.workdir / "checkpoints"
    model = make_state(plan.checkpoint_bytes, where)
    state = {"model": model, "step": 0}
    gib = sum(t.nbytes for t in model.values()) / 2**30
    rec.info("state", f"{len(model)} tensors, {gib:.2f} GiB on {where}")
    _async(rec, plan, state, root, where)
    with ckptkit.CheckpointManager(root / "same-sync") as mgr:
        mgr.save(7, state)
    with ckptkit.CheckpointManager(root / "same-async", async_save=True) as mgr:
        mgr.save(7, state)
        for tensor in model.values():
            tensor.zero_()  # overwritten on the GPU while the write runs
        synchronize(where)
    ok, detail = same_file(
        next((root / "same-sync").glob("step-*.ckpt")),
        next((root / "same-async").glob("step-*.ckpt")),
    )
    rec.check(
        "async file equals sync file (GPU tensors zeroed right after save)",
        int(ok),
        ok=ok,
        detail=detail,
    )
