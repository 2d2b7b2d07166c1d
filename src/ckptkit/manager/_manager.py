"""CheckpointManager: numbered checkpoints of a training run, kept and restored.

One file per step in one folder (``step-000000000123.ckpt``), each written like
``ckptkit.save`` (atomic, durable) and read back in full before anything older is
deleted. The folder alone is the manager's state: a new manager (after a crash,
a preemption, on another machine) sees exactly the steps that are there.
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ckptkit._api import load
from ckptkit._file import fs
from ckptkit._file.atomic import remove_stale_temp_files
from ckptkit._file.codec import Encoded, encode_state
from ckptkit._file.format import STEP_METADATA_METRICS, STEP_METADATA_STEP
from ckptkit._file.placement import check_map_location
from ckptkit._file.versions import parse_version
from ckptkit._file.writer import HeaderFields, write_encoded
from ckptkit.errors import CheckpointCorruptError, SchemaMismatchError
from ckptkit.manager._background import BackgroundSave
from ckptkit.manager._fallback import restore_newest
from ckptkit.manager._retention import (
    Mode,
    RetentionRule,
    best_steps,
    check_metrics,
    metrics_to_json,
    steps_to_delete,
)
from ckptkit.manager._snapshot import HostSnapshotBuffer
from ckptkit.manager._steps import StepFolder, check_step
from ckptkit.types import Status
from ckptkit.validation import validate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    import torch.distributed as dist

    from ckptkit.info import Checkpoint
    from ckptkit.manager._retention import StepRecord
    from ckptkit.manager._sharded import ShardedSteps
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import PathLike, StateTree


def _checked_schema(
    version: str, schema: str | None, registry: MigrationRegistry | None
) -> str | None:
    """The schema the steps carry, once version and schema agree with ``registry``.

    Raises:
        ValueError: A legacy version, or a version or schema the registry contradicts.
    """
    if parse_version(version).is_legacy:
        msg = "version '0.x' is legacy, read-only; save with a real one (e.g. '1.0')"
        raise ValueError(msg)
    if registry is None:
        return schema
    if version != registry.current:
        msg = (
            f"version {version!r} differs from the registry's current version "
            f"{registry.current!r}: pass version={registry.current!r}"
        )
        raise ValueError(msg)
    if schema is not None and schema != registry.schema:
        msg = f"schema {schema!r} differs from the registry's {registry.schema!r}"
        raise ValueError(msg)
    return registry.schema


class CheckpointManager:
    """Numbered checkpoints of one run in one folder: retention, async saves, restore.

    Args:
        directory: The folder of the run's checkpoints (created if missing).
            Temporary files of killed writers in it are removed.
        schema: Name of the state's format, written into each step (defaults to
            ``registry.schema``); ``restore`` refuses steps of another schema.
        version: Version of the state's format that this code writes.
        registry: Migrations: ``restore`` brings older steps to ``version``,
            which must then be ``registry.current``.
        keep_last: How many of the highest steps to keep (at least 1).
        keep_best: How many of the best steps by ``best_metric`` to keep as well.
        best_metric: Name of the metric (in ``save(..., metrics=)``) that ranks steps.
        mode: ``"min"`` (lower is better, e.g. a loss) or ``"max"``.
        async_save: Write in a background thread from a host-memory copy.
        sharded: Each step is a sharded checkpoint folder written by every rank
            of ``process_group`` (``ckptkit.distributed``): every rank constructs
            the manager and calls ``save``/``restore`` together; ``restore``
            fills a ``state`` in place (docs/ckptkit/manager.md, "Sharded
            training").
        process_group: The group of a sharded manager (default: the default
            group; none initialised: this process alone).

    Raises:
        ValueError: Inconsistent options (``keep_best`` without ``best_metric``,
            ``keep_last < 1``, a schema or version that contradicts ``registry``).

    Example:
        >>> import torch, ckptkit, tempfile
        >>> with ckptkit.CheckpointManager(tempfile.mkdtemp(), keep_last=2) as mgr:
        ...     for step in range(4):
        ...         mgr.save(step, {"w": torch.full((2,), float(step))})
        ...     mgr.steps(), mgr.restore().state["w"].tolist()
        ([2, 3], [3.0, 3.0])
    """

    def __init__(  # noqa: PLR0913 - the documented public signature
        self,
        directory: PathLike,
        *,
        schema: str | None = None,
        version: str = "1.0",
        registry: MigrationRegistry | None = None,
        keep_last: int = 3,
        keep_best: int = 0,
        best_metric: str | None = None,
        mode: Mode = "min",
        async_save: bool = False,
        sharded: bool = False,
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        self._rule = RetentionRule(keep_last, keep_best, best_metric, mode)
        schema = _checked_schema(version, schema, registry)
        self.directory = Path(directory)
        self.schema, self.version, self.registry = schema, version, registry
        self.keep_last, self.keep_best = keep_last, keep_best
        self.best_metric, self.mode, self.async_save = best_metric, mode, async_save
        self._sharded: ShardedSteps | None = None
        if sharded:  # collective step storage by ckptkit.distributed (imports torch)
            from ckptkit.manager._sharded import ShardedSteps

            self._sharded = ShardedSteps(
                self.directory,
                process_group=process_group,
                schema=schema,
                version=version,
                registry=registry,
                rule=self._rule,
                async_save=async_save,
            )
        elif process_group is not None:
            msg = "process_group is for sharded managers: pass sharded=True"
            raise ValueError(msg)
        else:
            fs.mkdir(self.directory)
            remove_stale_temp_files(self.directory)
        self._folder = StepFolder(self.directory)
        self._buffer = HostSnapshotBuffer()
        self._background = BackgroundSave()
        self._in_flight: int | None = None
        self._closed = False
        # Runs at garbage collection or interpreter exit, whichever comes first:
        # waits for the save in flight and prints an error nobody collected.
        self._finalizer = weakref.finalize(
            self,
            self._background.finish if self._sharded is None else self._sharded.close,
        )

    def __repr__(self) -> str:
        return (
            f"CheckpointManager({str(self.directory)!r}, keep_last={self.keep_last}, "
            f"keep_best={self.keep_best}, async_save={self.async_save})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def save(
        self,
        step: int,
        state: StateTree,
        *,
        metrics: Mapping[str, float] | None = None,
        status: str = "complete",
    ) -> None:
        """Save ``state`` as ``step``; with ``async_save``, return once it is copied.

        Waits for the save in flight, if any, and raises its error. The state is
        checked (and, asynchronously, copied to host memory) before this returns:
        the caller may change its tensors at once. When the step is durable and
        has passed full validation, steps beyond the retention rule are deleted.

        Args:
            step: The step number (>= 0); saving an existing step replaces it.
            state: The state, as for ``ckptkit.save``.
            metrics: Numbers stored with the step (``best_metric`` ranks by one).
            status: ``"complete"`` or ``"in_progress"`` (still a step).

        Raises:
            SerializationError: A leaf ckptkit cannot store (raised here, at once).
            TypeError: A step or metric of the wrong type.
            ValueError: A negative step or an unknown status.
            CheckpointError: The previous asynchronous save failed (or, without
                ``async_save``, this one did); ``OSError`` from the disk likewise.
            RuntimeError: The manager is closed.
        """
        self._check_open()
        if self._sharded is not None:
            self._sharded.save(check_step(step), state, metrics=metrics, status=status)
            return
        self.wait()
        step = check_step(step)
        status = Status(status).value
        metadata = {
            STEP_METADATA_STEP: step,
            STEP_METADATA_METRICS: metrics_to_json(check_metrics(metrics)),
        }
        encoded = encode_state(state)
        if not self.async_save:
            self._commit(step, encoded, status, metadata)
            return
        snapshot = self._buffer.snapshot(encoded)
        del encoded  # the caller's tensors are no longer referenced
        self._in_flight = step
        self._background.start(
            lambda: self._commit(step, snapshot, status, metadata),
            name=f"ckptkit-save-{step}",
        )

    def _commit(
        self, step: int, encoded: Encoded, status: str, metadata: dict[str, Any]
    ) -> None:
        """Write, read back in full, then apply retention (the background job)."""
        path = self._folder.path_of(step)
        try:
            fields = HeaderFields(self.version, self.schema, status, metadata)
            write_encoded(path, encoded, fields)
            report = validate(path, level="full")
            if not report.ok:
                self._folder.mark_damaged(path, report.reason)
                reason = f"failed validation right after writing: {report.reason}"
                raise CheckpointCorruptError(path, reason)
        finally:
            self._in_flight = None
        records = self._folder.records()
        doomed = steps_to_delete(records, new_step=step, rule=self._rule)
        self._folder.delete(doomed)

    def wait(self) -> None:
        """Block until the save in flight is durable; raise its error, if any.

        Raises:
            Exception: Whatever the background save raised (``CheckpointError``,
                ``OSError``, ...), once.
        """
        if self._sharded is not None:
            self._sharded.wait()
        self._background.finish()

    def steps(self) -> list[int]:
        """Durable steps whose header passes quick validation, oldest first.

        An asynchronous save in flight is not a step yet. A step that a full read
        found damaged is left out from then on (in this manager).

        Returns:
            The step numbers.
        """
        return [r.step for r in self._records()]

    def _records(self) -> list[StepRecord]:
        if self._sharded is not None:
            return self._sharded.records()
        return self._folder.records(exclude=self._in_flight)

    def latest(self) -> int | None:
        """The highest step (see :meth:`steps`), or None in an empty folder."""
        steps = self.steps()
        return steps[-1] if steps else None

    def best(self) -> int | None:
        """The best step by ``best_metric`` (ties: the newer), or None.

        Returns:
            The step, or None when no step has the metric.

        Raises:
            ValueError: The manager has no ``best_metric``.
        """
        if self.best_metric is None:
            msg = "best() needs best_metric (CheckpointManager(..., best_metric=...))"
            raise ValueError(msg)
        ranked = best_steps(self._records(), self.best_metric, self.mode, 1)
        return ranked[0] if ranked else None

    def restore(
        self,
        step: int | None = None,
        *,
        map_location: Any = "cpu",
        state: StateTree | None = None,
    ) -> Checkpoint:
        """Load a step after checking every byte; by default the newest good one.

        Without ``step``, a damaged newest step is recorded in the folder's
        failure ledger and the next older one is tried, with a
        :class:`CheckpointFallbackWarning`. A save in flight is waited for first
        (its error, if any, stays for the next ``save``/``wait``/``close``).

        Args:
            step: The step to load (no fallback: a damaged one raises).
            map_location: Device for the tensors.
            state: Sharded managers only, and required there: the state to fill
                in place (as ``ckptkit.distributed.load``), on every rank.

        Returns:
            The checkpoint, migrated to ``version`` when the manager has a registry.

        Raises:
            CheckpointNotFoundError: No such step, or no valid step at all.
            CheckpointCorruptError: ``step`` was given and is damaged.
            CheckpointIncompatibleError: A step of another schema or a newer
                version (never skipped: it needs another reader, not a fallback).
            MigrationError: A migration step failed.
            TypeError: ``map_location`` is not a device (a dtype, a dict, a
                function); ValueError: a device this machine cannot use. Both
                are raised before any step is read.
            RuntimeError: Moving tensors failed (out of memory): raised as it is.
                Only damage to a file marks a step damaged and skips it.
        """
        check_map_location(map_location)  # a caller's mistake is never damage
        if self._sharded is not None or state is not None:
            return self._restore_sharded(step, state, map_location)
        self._background.join()
        if step is not None:
            return self._load_checked(
                self._folder.path_of(check_step(step)), map_location
            )
        return restore_newest(
            self._folder.step_files(),
            lambda path: self._load_checked(path, map_location),
            folder=self._folder,
            is_another_step=self._folder.holds_another_step,
            stacklevel=2,
        )

    def _restore_sharded(
        self, step: int | None, state: StateTree | None, map_location: Any
    ) -> Checkpoint:
        if self._sharded is None or state is None:
            msg = (
                "restore(state=...) fills a state in place and needs sharded=True; "
                "a sharded manager needs the state to fill"
            )
            raise ValueError(msg)
        if step is not None:
            step = check_step(step)
        return self._sharded.restore(step, state=state, map_location=map_location)

    def _load_checked(self, path: Path, map_location: Any) -> Checkpoint:
        try:
            checkpoint = load(
                path,
                map_location=map_location,
                verify="full",
                registry=self.registry,
                to_version=None if self.registry is None else self.version,
            )
        except CheckpointCorruptError as error:
            self._folder.mark_damaged(path, error.reason)
            raise
        found = checkpoint.info.schema
        if self.registry is None and self.schema is not None and found != self.schema:
            reason = f"schema {found!r}, expected {self.schema!r}"
            raise SchemaMismatchError(path, reason)
        return checkpoint

    def close(self) -> None:
        """Wait for the save in flight, free the host buffer, raise a pending error.

        Calling it again does nothing. ``steps``/``latest``/``best``/``restore``
        still work afterwards; ``save`` does not.

        Raises:
            Exception: Whatever the last background save raised, if not yet raised.
        """
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        try:
            if self._sharded is not None:
                self._sharded.close()
            self._background.finish()
        finally:
            self._buffer.release()

    def _check_open(self) -> None:
        if self._closed:
            msg = f"{self!r} is closed"
            raise RuntimeError(msg)
