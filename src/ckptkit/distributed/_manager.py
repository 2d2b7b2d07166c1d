"""``CheckpointManager(..., sharded=True)``: numbered sharded steps, collectively.

Every rank of the group constructs the manager and calls ``save`` and
``restore`` together (like ``ckd.save``/``ckd.load``). One rank (rank 0 of the
group) recovers interrupted saves at start, writes the failure ledger and
deletes steps; every decision reaches all ranks (``_group.Group.run``), so all
take the same branch. After a save every rank checks every checksum of its own
shard (the read-back is spread over the ranks), and only when all agree does
rank 0 apply retention. docs/manager.md ("Sharded training") is the guide.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.tensor import DTensor

from ckptkit._background import BackgroundSave
from ckptkit._format import STEP_METADATA_METRICS, STEP_METADATA_STEP
from ckptkit._reader import verify_buffer, verify_entry
from ckptkit._retention import check_metrics, metrics_to_json, steps_to_delete
from ckptkit.distributed import _fileops
from ckptkit.distributed._api import load, save
from ckptkit.distributed._chunks import ChunkReader
from ckptkit.distributed._commit import recover
from ckptkit.distributed._group import Group
from ckptkit.distributed._index import read_index
from ckptkit.distributed._steps import ShardedStepFolder
from ckptkit.errors import CheckpointCorruptError, CheckpointNotFoundError
from ckptkit.types import Status

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import torch.distributed as dist

    from ckptkit._retention import Mode, StepRecord
    from ckptkit.info import Checkpoint
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import StateTree


def _host_copy(state: Any) -> Any:
    """A copy of ``state`` in host memory that the caller's changes cannot reach."""
    if isinstance(state, DTensor):
        local = state.to_local().detach().to("cpu", copy=True)
        return DTensor.from_local(
            local,
            state.device_mesh,
            state.placements,
            run_check=False,
            shape=state.shape,
            stride=state.stride(),
        )
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        twin = copy.copy(state)
        for key, value in state.items():
            twin[key] = _host_copy(value)
        return twin
    if isinstance(state, list):
        return [_host_copy(value) for value in state]
    if type(state) is tuple:
        return tuple(_host_copy(value) for value in state)
    return copy.deepcopy(state)  # numpy arrays and other mutable leaves


class ShardedSteps:
    """The sharded engine behind ``CheckpointManager(..., sharded=True)``."""

    def __init__(  # noqa: PLR0913 - the manager's own options
        self,
        directory: Path,
        *,
        process_group: dist.ProcessGroup | None,
        schema: str | None,
        version: str,
        registry: MigrationRegistry | None,
        keep_last: int,
        keep_best: int,
        best_metric: str | None,
        mode: Mode,
        async_save: bool,
    ) -> None:
        self.directory = directory
        self.group = Group(process_group)
        self.schema, self.version, self.registry = schema, version, registry
        self.keep_last, self.keep_best = keep_last, keep_best
        self.best_metric, self.mode, self.async_save = best_metric, mode, async_save
        self.folder = ShardedStepFolder(directory)
        self.group.run(self._start, str(directory), "start")
        # Background saves meet in collectives of their own: on the training
        # group they could interleave with the training loop's collectives.
        self._save_group = Group(self.group.new_group()) if async_save else self.group
        self._background = BackgroundSave()
        self._in_flight: int | None = None

    def _start(self) -> None:
        _fileops.make_dir(self.directory)
        if self.group.is_coordinator:
            recover(self.directory)

    def save(
        self,
        step: int,
        state: StateTree,
        *,
        metrics: Mapping[str, float] | None,
        status: str,
    ) -> None:
        """Save ``state`` as ``step`` on every rank (see ``CheckpointManager.save``)."""
        self.wait()
        status = Status(status).value
        metadata = {
            STEP_METADATA_STEP: step,
            STEP_METADATA_METRICS: metrics_to_json(check_metrics(metrics)),
        }
        if not self.async_save:
            self._commit(step, state, status, metadata, self.group)
            return
        snapshot = _host_copy(state)
        self._in_flight = step
        self._background.start(
            lambda: self._commit(step, snapshot, status, metadata, self._save_group),
            name=f"ckptkit-sharded-save-{step}",
        )

    def _commit(
        self,
        step: int,
        state: StateTree,
        status: str,
        metadata: dict[str, Any],
        group: Group,
    ) -> None:
        """Save, verify every shard (each rank its own), then apply retention."""
        path = self.folder.path_of(step)
        try:
            save(
                path,
                state,
                process_group=group.process_group,
                version=self.version,
                schema=self.schema,
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
                self.folder.records(),
                new_step=step,
                keep_last=self.keep_last,
                keep_best=self.keep_best,
                best_metric=self.best_metric,
                mode=self.mode,
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
        self._background.join()
        if step is not None:
            return self._load(self.folder.path_of(step), state)
        skipped: list[str] = []
        for found, path in reversed(self.folder.step_folders()):
            if self.folder.is_known_damaged(path):
                skipped.append(f"step {found} (damaged, see the ledger)")
                continue
            try:
                checkpoint = self._load(path, state)
            except CheckpointCorruptError as error:
                skipped.append(f"step {found} ({error.reason})")
                continue
            except CheckpointNotFoundError:  # no index: not a committed step
                continue
            if skipped:
                warnings.warn(
                    f"{self.directory}: restored step {found}; newer steps failed "
                    f"validation and were recorded in {self.folder.ledger.path}: "
                    + "; ".join(skipped),
                    _fallback_warning(),
                    stacklevel=3,
                )
            return checkpoint
        detail = f": {'; '.join(skipped)}" if skipped else ""
        raise CheckpointNotFoundError(
            self.directory, f"no valid step to restore{detail}"
        )

    def _load(self, path: Path, state: StateTree) -> Checkpoint:
        try:
            return load(
                path,
                state,
                process_group=self.group.process_group,
                registry=self.registry,
                to_version=None if self.registry is None else self.version,
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
        with ChunkReader(path, index, verify=True) as chunks:
            shard = chunks.shard(rank)
            buffer = verify_buffer()
            for spec in sorted(shard.parsed.entries.values(), key=lambda s: s.begin):
                verify_entry(shard.handle, shard.parsed, spec, buffer)
    except (CheckpointCorruptError, CheckpointNotFoundError, OSError) as error:
        return str(error)
    return None


def _fallback_warning() -> type[Warning]:
    from ckptkit.manager import CheckpointFallbackWarning

    return CheckpointFallbackWarning
