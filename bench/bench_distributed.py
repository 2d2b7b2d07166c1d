"""ckptkit.distributed against torch.distributed.checkpoint on CPU ranks.

Run: python bench/bench_distributed.py [--ranks 4] [--mib-per-rank 256]
     [--repeats 5] [--dir bench-output]

In one run, on one state of DTensors sharded over ``--ranks`` gloo ranks (one
process per rank, forked; each holds ``--mib-per-rank`` MiB of float32 in 16
tensors plus a few replicated values):

- save: ``ckd.save`` (shard files with per-tensor xxh3, fsynced, index, atomic
  rename of the folder) against ``dcp.save`` with ``FileSystemWriter`` (its
  defaults: one file per rank, fsync on);
- load: ``ckd.load`` (every chunk verified) against ``dcp.load`` with
  ``FileSystemReader``, into the same DTensors.

The two alternate, ``--repeats`` times each, so both see the same machine; every
save goes to a fresh folder (the previous one is removed) and every load reads
the folder just written (from the page cache, like a restart on the same node).
Rank 0 times each call between barriers. Prints the best and median seconds, the
throughput of the whole state, and the ratios ckptkit / DCP.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import statistics
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Shard, distribute_tensor

import ckptkit.distributed as ckd

if TYPE_CHECKING:
    from collections.abc import Callable

TENSORS = 16


def _state(mib_per_rank: int, world: int) -> dict[str, Any]:
    mesh = init_device_mesh("cpu", (world,))
    rows = mib_per_rank * (1 << 20) // 4 // TENSORS // 1024 * world
    torch.manual_seed(0)
    model = {
        f"layer{i}.weight": distribute_tensor(torch.randn(rows, 1024), mesh, [Shard(0)])
        for i in range(TENSORS)
    }
    return {"model": model, "step": torch.tensor(7), "epoch": 3}


def _timed(job: Callable[[], object]) -> float:
    dist.barrier()
    start = time.perf_counter()
    job()
    dist.barrier()
    return time.perf_counter() - start


def _calls(
    kind: str, folder: Path, state: dict[str, Any], target: dict[str, Any]
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The save and the load of one library, to one folder."""
    if kind == "ckd":
        return (lambda: ckd.save(folder, state)), (lambda: ckd.load(folder, target))
    writer = dcp.FileSystemWriter(folder)
    return (
        lambda: dcp.save(state, storage_writer=writer),
        lambda: dcp.load(target, storage_reader=dcp.FileSystemReader(folder)),
    )


def _rank(rank: int, args: argparse.Namespace, store: Path, results: Path) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # DCP's FutureWarnings and overwrite notices
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=args.ranks,
        timeout=dt.timedelta(seconds=600),
    )
    state = _state(args.mib_per_rank, args.ranks)
    target = _state(args.mib_per_rank, args.ranks)
    times: dict[str, list[float]] = {
        k: [] for k in ("ckd_save", "dcp_save", "ckd_load", "dcp_load")
    }
    base = Path(args.dir)
    for repeat in range(args.repeats):
        for kind in ("dcp", "ckd"):
            folder = base / f"{kind}-{repeat}"
            save, load = _calls(kind, folder, state, target)
            times[f"{kind}_save"].append(_timed(save))
            times[f"{kind}_load"].append(_timed(load))
            equal = all(
                torch.equal(target["model"][k].to_local(), v.to_local())
                for k, v in state["model"].items()
            )
            if not equal:
                msg = f"{kind}: loaded state differs from the saved one"
                raise RuntimeError(msg)
            dist.barrier()
            if rank == 0:
                shutil.rmtree(folder)
            dist.barrier()
    if rank == 0:
        results.write_text(json.dumps(times))
    dist.destroy_process_group()
    os._exit(0)


def _report(times: dict[str, list[float]], total_gib: float) -> None:
    print(f"state: {total_gib:.2f} GiB over the ranks; seconds (best / median)")
    for what in ("save", "load"):
        ours, theirs = times[f"ckd_{what}"], times[f"dcp_{what}"]
        for name, values in ((f"ckd.{what}", ours), (f"dcp.{what}", theirs)):
            best, median = min(values), statistics.median(values)
            print(
                f"  {name:10} {best:7.3f} / {median:7.3f} s   "
                f"{total_gib / best:6.2f} GiB/s (best)"
            )
        print(
            f"  ratio ckd/dcp {what}: best {min(ours) / min(theirs):.3f}, "
            f"median {statistics.median(ours) / statistics.median(theirs):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--mib-per-rank", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default="bench-output/distributed")
    args = parser.parse_args()
    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    store, results = base / "store", base / "times.json"
    context = multiprocessing.get_context("fork")
    ranks = [
        context.Process(target=_rank, args=(r, args, store, results))
        for r in range(args.ranks)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join()
    if any(process.exitcode for process in ranks):
        msg = f"a rank failed: exit codes {[p.exitcode for p in ranks]}"
        raise SystemExit(msg)
    total_gib = args.ranks * args.mib_per_rank / 1024
    _report(json.loads(results.read_text()), total_gib)
    shutil.rmtree(base)


if __name__ == "__main__":
    main()
