"""Many processes (torchrun) on one predict run: ranks, shard assignment, sync.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment)
every process joins one process group (NCCL on GPUs, gloo on CPUs). Rank 0 owns
the output folder, the manifest, the prepare stage and the final outputs; the
shards are spread over all ranks, balanced by token count; each rank writes only
the checkpoints of its own shards. Without torchrun a run is a world of one and
nothing here talks to torch.distributed.

A rank that dies takes the job down: torchrun's agent stops the other workers
and exits non-zero, naming the failed rank; a resumed run (any world size) only
computes the shards that have no valid final checkpoint.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Sequence

_T = TypeVar("_T")
#: How long collective calls may wait: the final barrier waits for the slowest
#: rank's shards (hours on a GPU). Dead ranks do not rely on it: torchrun stops
#: the whole group as soon as one worker dies.
ENV_TIMEOUT = "VIRNUCPRO_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 48 * 3600


@dataclass(frozen=True)
class World:
    """This process's place in the job.

    Attributes:
        rank: Global rank (0 when not distributed).
        size: Number of processes.
        local_rank: Rank on this machine (picks the GPU).
        local_size: Processes on this machine.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_distributed(self) -> bool:
        """More than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: owns the folder, the manifest, prepare and the outputs."""
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (a world of one otherwise)."""
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(
        rank=int(env["RANK"]),
        size=size,
        local_rank=int(env.get("LOCAL_RANK", "0")),
        local_size=int(env.get("LOCAL_WORLD_SIZE", str(size))),
    )


def rank_device(requested: str, world: World, *, cuda_available: bool) -> str:
    """The device of this rank: its own GPU (``cuda:LOCAL_RANK``) or the CPU."""
    if not world.is_distributed:
        return requested
    if requested.startswith("cuda") or (requested == "auto" and cuda_available):
        return f"cuda:{world.local_rank}"
    return "cpu" if requested == "auto" else requested


def assign_shards(
    costs: Sequence[int], shards: Sequence[int], size: int
) -> list[list[int]]:
    """Spread ``shards`` over ``size`` ranks, balanced by cost, deterministically.

    Largest first, each to the least loaded rank (ties: the lower rank); each
    rank's shards are then returned in shard order.

    Args:
        costs: Cost (tokens) of every shard, indexed by shard number.
        shards: The shards to assign (those not finished yet).
        size: Number of ranks.

    Returns:
        For each rank, its shard numbers in increasing order.
    """
    loads = [(0, rank) for rank in range(size)]
    heapq.heapify(loads)
    assigned: list[list[int]] = [[] for _ in range(size)]
    for shard in sorted(shards, key=lambda s: (-costs[s], s)):
        load, rank = heapq.heappop(loads)
        assigned[rank].append(shard)
        heapq.heappush(loads, (load + costs[shard], rank))
    return [sorted(part) for part in assigned]


class ProcessGroup:
    """The job's process group (a no-op world of one without torchrun)."""

    def __init__(self, world: World, *, use_cuda: bool) -> None:
        self.world = world
        self._active = False
        if world.is_distributed:
            import torch.distributed as dist

            timeout = timedelta(
                seconds=int(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_S))
            )
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo", timeout=timeout
            )
            self._active = True

    def barrier(self) -> None:
        """Wait for every rank (no-op alone)."""
        if self._active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, value: _T | None) -> _T:
        """Rank 0's ``value``, on every rank.

        torch.distributed pickles it in memory between this job's own
        processes; nothing is ever unpickled from a file.
        """
        if not self._active:
            assert value is not None  # noqa: S101 - rank 0 always passes one
            return value
        import torch.distributed as dist

        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        result: _T = box[0]
        return result

    def gather(self, value: _T) -> list[_T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self._active:
            return [value]
        import torch.distributed as dist

        box: list[Any] = [None] * self.world.size
        dist.all_gather_object(box, value)
        return box

    def close(self) -> None:
        """Leave the process group."""
        if self._active:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._active = False
