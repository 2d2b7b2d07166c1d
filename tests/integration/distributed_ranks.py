"""Real gloo process groups on CPU for the sharded-checkpoint tests.

Run as ``python distributed_ranks.py OUT``: imports torch once, then forks one
process per rank for each scenario (spawning would import torch again in every
rank, for tens of seconds on a shared 2-core machine). Each rank writes what it
saw to ``OUT/results/<scenario>-<rank>.json``; the parent writes
``OUT/report.json`` with every rank's results and exit codes, for
``test_distributed_ranks.py`` to check.

Scenarios: ``save4`` (FSDP2 + AdamW on 4 ranks: save, a rank failing its write,
a flipped byte, a pickle-free load, a sharded CheckpointManager), ``load2`` and
``load1`` (the 4-rank checkpoint loaded into FSDP2 on 2 ranks and on 1 rank with
a process group), ``kill<N>`` (SIGKILL of one rank at a random moment of a save).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import pickle
import random
import shutil
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import Shard, distribute_tensor

import ckptkit
import ckptkit.distributed as ckd
from ckptkit._file import writer as _writer
from ckptkit.distributed import _storage_writer

GROUP_TIMEOUT_S = 30
KILL_REPEATS = 3
#: Tensors of the killed save; each rank's write of each is slowed by 20 ms, so
#: the save lasts about 1.2 s and a kill 0.05 to 0.9 s after it began lands in it.
KILL_TENSORS = 60


def _init(rank: int, world: int, store: Path) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("error")  # ckptkit must not warn where the suite forbids it
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch's own notices
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=dt.timedelta(seconds=GROUP_TIMEOUT_S),
    )


def _model(world: int, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    mesh = init_device_mesh("cpu", (world,))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _full(value: Any) -> Any:
    """``value`` with every DTensor gathered (collective)."""
    if hasattr(value, "full_tensor"):
        return value.full_tensor()
    if isinstance(value, dict):
        return type(value)((k, _full(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_full(v) for v in value]
    return value


def _rng(rank: int) -> dict[str, Any]:
    random.seed(rank)
    np.random.seed(rank)
    torch.manual_seed(1000 + rank)
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def _trained_state(rank: int, world: int) -> tuple[dict[str, Any], Any, Any]:
    model, optim = _model(world, seed=0)
    torch.manual_seed(100 + rank)
    for _ in range(2):
        model(torch.randn(4, 8)).sum().backward()
        optim.step()
        optim.zero_grad()
    model_sd, optim_sd = get_state_dict(model, optim)
    state = {
        "model": model_sd,
        "optim": optim_sd,
        "epoch": 3,
        "note": "fsdp",
        "rng": {f"rank{rank}": _rng(rank)},
    }
    return state, model, optim


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _error(error: BaseException) -> list[str]:
    return [type(error).__name__, str(error)]


def _fresh_target(world: int, seed: int) -> tuple[dict[str, Any], Any, Any]:
    model, optim = _model(world, seed=seed)
    model_sd, optim_sd = get_state_dict(model, optim)
    state = {"model": model_sd, "optim": optim_sd, "epoch": 0, "note": "", "rng": None}
    return state, model, optim


def _loaded_full(state: dict[str, Any], model: Any, optim: Any) -> dict[str, Any]:
    set_state_dict(
        model, optim, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )
    model_sd, optim_sd = get_state_dict(model, optim)
    return {"model": _full(model_sd), "optim": _full(optim_sd)}


class _NoPickle:
    """Make every way of unpickling stored bytes raise, in this process."""

    def __enter__(self) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            msg = "pickle is disabled in this test"
            raise AssertionError(msg)

        self._saved = (pickle.loads, pickle.load, pickle.Unpickler, torch.load)
        pickle.loads = pickle.load = refuse  # type: ignore[assignment]
        pickle.Unpickler = refuse  # type: ignore[assignment,misc]
        torch.load = refuse  # type: ignore[assignment]

    def __exit__(self, *exc_info: object) -> None:
        pickle.loads, pickle.load, pickle.Unpickler, torch.load = self._saved


def _manager_checks(rank: int, out: Path, state: dict[str, Any]) -> dict[str, Any]:
    run = out / "run"
    seen: dict[str, Any] = {}
    with ckptkit.CheckpointManager(
        run, keep_last=2, sharded=True, async_save=True
    ) as manager:
        for step in (1, 2, 3):
            manager.save(step, {**state, "epoch": step}, metrics={"loss": 1.0 / step})
        manager.wait()
        seen["steps"] = manager.steps()
    dist.barrier()
    if rank == 0:
        _flip_last_byte(run / "step-000000000003" / "shard-00001.ckpt")
    dist.barrier()
    target, _, _ = _fresh_target(4, seed=9)
    manager = ckptkit.CheckpointManager(run, keep_last=2, sharded=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = manager.restore(state=target)
    manager.close()
    seen["restored_step"] = restored.info.metadata["step"]
    seen["restored_epoch"] = target["epoch"]
    seen["warnings"] = [w.category.__name__ for w in caught]
    return seen


def _scenario_save4(rank: int, world: int, out: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    state, model, optim = _trained_state(rank, world)
    rngs = [None] * world
    dist.all_gather_object(rngs, state["rng"])
    reference = {
        **_full({"model": state["model"], "optim": state["optim"]}),
        "epoch": 3,
        "note": "fsdp",
        "rng": {k: v for part in rngs for k, v in part.items()},
    }
    if rank == 0:
        ckptkit.save(out / "ref.ckpt", reference)
    info = ckd.save(out / "ck4", state, schema="fsdp-demo", metadata={"epoch": 3})
    result["info"] = [info.world_size, len(info.shards), info.schema]

    # A rank that raises while writing: every rank raises the same error.
    original = _storage_writer.write_encoded

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device (injected)")

    _storage_writer.write_encoded = disk_full if rank == 2 else original  # type: ignore[assignment]
    try:
        ckd.save(out / "ck4", {**state, "epoch": 4})
    except Exception as error:  # noqa: BLE001 - recorded for the test
        result["write_failure"] = _error(error)
    finally:
        _storage_writer.write_encoded = original
    dist.barrier()

    # One flipped bit in one shard: every rank raises, naming the shard.
    if rank == 0:
        shutil.copytree(out / "ck4", out / "ck4bad")
        _flip_last_byte(out / "ck4bad" / "shard-00002.ckpt")
    dist.barrier()
    target, _, _ = _fresh_target(world, seed=3)
    try:
        ckd.load(out / "ck4bad", target)
    except Exception as error:  # noqa: BLE001 - recorded for the test
        result["corrupt_load"] = _error(error)

    # Loading with every unpickler disabled.
    target, model, optim = _fresh_target(world, seed=7)
    with _NoPickle():
        ckd.load(out / "ck4", target)
    full = _loaded_full(target, model, optim)
    if rank == 0:
        loaded = {**full, "epoch": target["epoch"], "rng": target["rng"]}
        ckptkit.save(out / "loaded4.ckpt", loaded)
    result["manager"] = _manager_checks(rank, out, state)
    return result


def _scenario_load(rank: int, world: int, out: Path) -> dict[str, Any]:
    target, model, optim = _fresh_target(world, seed=11)
    with _NoPickle():
        checkpoint = ckd.load(out / "ck4", target)
    full = _loaded_full(target, model, optim)
    if rank == 0:
        loaded = {**full, "epoch": target["epoch"], "rng": target["rng"]}
        ckptkit.save(out / f"loaded{world}.ckpt", loaded)
    result: dict[str, Any] = {
        "info": [checkpoint.info.world_size, checkpoint.info.schema]
    }
    if world == 2:
        # A migration that adds a tensor, which a DTensor of the state takes.
        target, _, _ = _fresh_target(world, seed=13)
        migrated = ckd.load(out / "ck4", target, registry=_registry())
        bias = target["model"]["0.bias"].full_tensor()
        result["migrated"] = [len(migrated.applied), bias.tolist()]
        # The single file (consolidated) into a sharded state.
        target, model, optim = _fresh_target(world, seed=17)
        ckd.load(out / "ref.ckpt", target)
        full = _loaded_full(target, model, optim)
        if rank == 0:
            ckptkit.save(out / "from_single2.ckpt", {**full, "rng": target["rng"]})
    return result


def _new_bias(state: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: the first layer's bias starts at 0, 1, 2, ... (a new tensor)."""
    state["model"]["0.bias"] = torch.arange(16.0)
    return state


def _registry() -> ckptkit.MigrationRegistry:
    registry = ckptkit.MigrationRegistry(schema="fsdp-demo", current="1.1")
    registry.register("1.0", "1.1", _new_bias)
    return registry


def _kill_state(rank: int, world: int, epoch: int) -> dict[str, Any]:
    mesh = init_device_mesh("cpu", (world,))
    torch.manual_seed(epoch)
    tensors = {
        f"w{i}": distribute_tensor(torch.randn(8, 4), mesh, [Shard(0)])
        for i in range(KILL_TENSORS)
    }
    return {"model": tensors, "epoch": epoch, "rank": {f"r{rank}": rank}}


def _scenario_kill(rank: int, world: int, out: Path) -> dict[str, Any]:
    ckd.save(out / "ck", _kill_state(rank, world, epoch=1))
    dist.barrier()
    slow = _writer._write_entry

    def slowly(*args: Any, **kwargs: Any) -> str:
        time.sleep(0.02)  # widen the window the parent's SIGKILL lands in
        return slow(*args, **kwargs)

    _writer._write_entry = slowly  # type: ignore[assignment]
    second = _kill_state(rank, world, epoch=2)  # distribute_tensor is collective
    (out / f"ready-{rank}").write_text("1")
    try:
        ckd.save(out / "ck", second)
    except Exception as error:  # noqa: BLE001 - recorded for the test
        return {"second_save": _error(error)}
    return {"second_save": None}


SCENARIOS = {"save4": _scenario_save4, "load": _scenario_load, "kill": _scenario_kill}


def _rank_main(name: str, kind: str, rank: int, world: int, out: Path) -> None:
    results = out / "results"
    try:
        _init(rank, world, out / f"store-{name}")
        result = SCENARIOS[kind](rank, world, out)
        code = 0
    except BaseException:  # noqa: BLE001 - reported, not raised
        result = {"traceback": traceback.format_exc()}
        code = 1
    (results / f"{name}-{rank}.json").write_text(json.dumps(result))
    os._exit(code)  # no parent atexit hooks in a forked child


def _start(name: str, kind: str, world: int, out: Path) -> list[Any]:
    context = multiprocessing.get_context("fork")
    ranks = [
        context.Process(target=_rank_main, args=(name, kind, r, world, out))
        for r in range(world)
    ]
    for process in ranks:
        process.start()
    return ranks


def _join(ranks: list[Any], timeout_s: float) -> list[int | None]:
    deadline = time.monotonic() + timeout_s
    for process in ranks:
        process.join(max(0.0, deadline - time.monotonic()))
    codes = [process.exitcode for process in ranks]
    for process in ranks:
        if process.is_alive():  # hung: reported as None
            process.kill()
            process.join()
    return codes


def _kill_repeat(number: int, out: Path, seed: int) -> dict[str, Any]:
    folder = out / f"kill{number}"
    (folder / "results").mkdir(parents=True)
    ranks = _start(f"kill{number}", "kill", 2, folder)
    chooser = random.Random(seed)
    deadline = time.monotonic() + 120
    while not all((folder / f"ready-{r}").exists() for r in range(2)):
        if time.monotonic() > deadline or not all(p.is_alive() for p in ranks):
            break
        time.sleep(0.01)
    delay = chooser.uniform(0.05, 0.9)
    victim = chooser.randrange(2)
    time.sleep(delay)
    if ranks[victim].is_alive():
        os.kill(ranks[victim].pid, signal.SIGKILL)
    started = time.monotonic()
    codes = _join(ranks, timeout_s=3 * GROUP_TIMEOUT_S)
    return {
        "delay_s": delay,
        "victim": victim,
        "codes": codes,
        "survivor_exit_s": time.monotonic() - started,
    }


def main() -> None:
    out = Path(sys.argv[1])
    (out / "results").mkdir(parents=True)
    report: dict[str, Any] = {"codes": {}}
    for name, kind, world in (
        ("save4", "save4", 4),
        ("load2", "load", 2),
        ("load1", "load", 1),
    ):
        report["codes"][name] = _join(_start(name, kind, world, out), 240)
    report["kills"] = [_kill_repeat(n, out, seed=n) for n in range(KILL_REPEATS)]
    for path in sorted((out / "results").glob("*.json")):
        report[path.stem] = json.loads(path.read_text())
    for number in range(KILL_REPEATS):
        for path in sorted((out / f"kill{number}" / "results").glob("*.json")):
            report[path.stem] = json.loads(path.read_text())
    (out / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
