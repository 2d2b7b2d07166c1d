"""``CheckpointManager(..., sharded=True)``: numbered sharded steps, collectively.

Every rank of the group constructs the manager and calls ``save`` and
``restore`` together (like ``ckd.save``/``ckd.load``). One rank (rank 0 of the
group) recovers interrupted saves at start, writes the failure ledger and
deletes steps; every decision reaches all ranks (``_group.Group.run``), so all
take the same branch. After a save every rank checks every checksum of its own
shard (the read-back is spread over the ranks), and only when all agree does
rank 0 apply retention. docs/ckptkit/manager.md ("Sharded training") is the guide.
"""

from __future__ import annotations

import copy
from contextlib import closing
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.tensor import DTensor

from ckptkit._file import fs
from ckptkit._file.tensors import verify_all
from ckptkit.distributed._api import load, save
from ckptkit.distributed._chunks import ChunkReader
from ckptkit.distributed._commit import recover
from ckptkit.distributed._group import Group
from ckptkit.distributed._index import read_index
from ckptkit.distributed._local import map_leaves
from ckptkit.errors import CheckpointCorruptError, CheckpointNotFoundError
from ckptkit.manager._background import BackgroundSave
from ckptkit.manager._fallback import restore_newest
from ckptkit.manager._options import checked_status
from ckptkit.manager._retention import step_metadata, steps_to_delete
from ckptkit.manager._sharded_steps import ShardedStepFolder
from ckptkit.manager._steps import check_step

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import torch.distributed as dist

    from ckptkit.info import Checkpoint
    from ckptkit.manager._options import StepSettings
    from ckptkit.manager._retention import StepRecord
    from ckptkit.types import StateTree


def _host_leaf(value: Any) -> Any:
    """A copy of one leaf in host memory that the caller's changes cannot reach."""
    if isinstance(value, DTensor):
        local = value.to_local().detach().to("cpu", copy=True)
        return DTensor.from_local(
            local,
            value.device_mesh,
            value.placements,
            run_check=False,
            shape=value.shape,
            stride=value.stride(),
        )
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    return copy.deepcopy(value)  # numpy arrays and other mutable leaves


class ShardedSteps:
    """The sharded engine behind ``CheckpointManager(..., sharded=True)``."""

    preempted = False  # a sharded run catches preemption signals itself

    def __init__(
        self,
        directory: Path,
        settings: StepSettings,
        *,
        process_group: dist.ProcessGroup | None,
    ) -> None:
        self.directory = directory
        self.group = Group(process_group)
        self.settings = settings
        self.folder = ShardedStepFolder(directory)
        self.group.run(self._start, str(directory), "start")
        # Background saves meet in collectives of their own: on the training
        # group they could interleave with the training loop's collectives.
        self._save_group = (
            Group(self.group.new_group()) if settings.async_save else self.group
        )
        self._background = BackgroundSave()
        self._in_flight: int | None = None

    def _start(self) -> None:
        fs.mkdir(self.directory)
        if self.group.is_coordinator:
            recover(self.directory)

    def save(
        self,
        step: int,
        state: StateTree,
        *,
        metrics: Mapping[str, float] | None,
        status: str,
    ) -> bool:
        """Save ``state`` as ``step`` on every rank (False: no signal deferred here)."""
        step = check_step(step)
        self.wait()
        status = checked_status(status)
        metadata = step_metadata(step, metrics)
        if not self.settings.async_save:
            self._commit(step, state, status, metadata)
            return False
        snapshot = map_leaves(state, _host_leaf)
        self._in_flight = step
        self._background.start(
            lambda: self._commit(step, snapshot, status, metadata),
            name=f"ckptkit-sharded-save-{step}",
        )
        return False

    def _commit(
        self, step: int, state: StateTree, status: str, metadata: dict[str, Any]
    ) -> None:
        """Save, verify every shard (each rank its own), then apply retention."""
        group = self._save_group
        path = self.folder.path_of(step)
        try:
            save(
                path,
                state,
                process_group=group.process_group,
                version=self.settings.version,
                schema=self.settings.schema,
                status=status,
                metadata=metadata,
            )
            reasons = group.gather(_own_shard_problem(path, group.rank))
            problems = [reason for reason in reasons if reason is not None]
            if problems:
                self.folder.mark_damaged(path, problems[0], record=group.is_coordinator)
                reason = f"failed validation right after writing: {problems[0]}"
                raise CheckpointCorruptError(path, reason)
        finally:
            self._in_flight = None
        group.run(lambda: self._retain(step, group), str(path), "retention")

    def _retain(self, step: int, group: Group) -> None:
        if group.is_coordinator:
            doomed = steps_to_delete(
                self.folder.records(), new_step=step, rule=self.settings.rule
            )
            self.folder.delete(doomed)

    def wait(self) -> None:
        """Block until the save in flight is done; raise its error, if any."""
        self._background.finish()

    def records(self) -> list[StepRecord]:
        """Durable steps with an intact index, oldest first."""
        return self.folder.records(exclude=self._in_flight)

    def restore(
        self, step: int | None, *, state: StateTree, map_location: Any
    ) -> Checkpoint:
        """Fill ``state`` from a step; by default the newest good one (collective)."""
        del map_location  # the state's own tensors decide where data goes
        path = None if step is None else self.folder.path_of(check_step(step))
        self._background.join()
        if path is not None:
            return self._load(path, state)
        return restore_newest(
            self.folder.step_folders(),
            lambda path: self._load(path, state),
            folder=self.folder,
            stacklevel=3,  # here <- CheckpointManager.restore <- its caller
        )

    def _load(self, path: Path, state: StateTree) -> Checkpoint:
        try:
            registry = self.settings.registry
            return load(
                path,
                state,
                process_group=self.group.process_group,
                registry=registry,
                to_version=None if registry is None else self.settings.version,
            )
        except CheckpointCorruptError as error:
            self.folder.mark_damaged(
                path, error.reason, record=self.group.is_coordinator
            )
            raise

    def close(self) -> None:
        """Wait for the save in flight; raise its error once."""
        self._background.finish()


def _own_shard_problem(path: Path, rank: int) -> str | None:
    """Every checksum of this rank's shard, read back; the problem found, if any."""
    try:
        index = read_index(path)
        if all(shard.rank != rank for shard in index.shards):
            return None  # this rank held no tensor
        with closing(ChunkReader(path, index, verify=True)) as chunks:
            shard = chunks.shard(rank)
            verify_all(shard.handle, shard.parsed)
    except (CheckpointCorruptError, CheckpointNotFoundError, OSError) as error:
        return str(error)
    return None
