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

from ckptkit._file.placement import check_map_location
from ckptkit.manager._file_steps import FileSteps
from ckptkit.manager._options import StepSettings, checked_schema, open_folder
from ckptkit.manager._preemption import preemption_signals
from ckptkit.manager._retention import Mode, RetentionRule, best_steps

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import torch.distributed as dist

    from ckptkit.info import Checkpoint
    from ckptkit.manager._sharded import ShardedSteps
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import PathLike, StateTree


class CheckpointManager:
    """Numbered checkpoints of one run in one folder: retention, async saves, restore.

    The manager holds its folder for itself until :meth:`close` (one writer per
    folder): another manager on the same folder, in this process or another, is
    refused with :class:`~ckptkit.FolderLockedError`.

    Args:
        directory: The folder of the run's checkpoints. Temporary files of killed
            writers in it are removed.
        create: Create ``directory`` if it is missing; with False a missing folder
            is refused (a resumed run whose path is mistyped).
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
        handle_preemption: Catch SIGTERM (True) or the given signals while the
            manager is open: :attr:`preempted` turns True, the save in flight is
            finished, and the process ends only after the next save is durable
            (see docs/ckptkit/manager.md, "Preemption"). Single-file managers only.

    Raises:
        ValueError: Inconsistent options (``keep_best`` without ``best_metric``,
            ``keep_last < 1``, a schema or version that contradicts ``registry``,
            ``handle_preemption`` outside the main thread).
        CheckpointNotFoundError: ``create=False`` and the folder is missing.
        NotADirectoryError: ``directory`` is a file.
        FolderLockedError: Another manager holds the folder.

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
        create: bool = True,
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
        handle_preemption: bool | Collection[int] = False,
    ) -> None:
        rule = RetentionRule(keep_last, keep_best, best_metric, mode)
        schema = checked_schema(version, schema, registry)
        signals = preemption_signals(handle_preemption)
        if process_group is not None and not sharded:
            msg = "process_group is for sharded managers: pass sharded=True"
            raise ValueError(msg)
        if sharded and signals:
            msg = (
                "handle_preemption is for single-file managers; a sharded run "
                "catches the signal itself and saves with every rank"
            )
            raise ValueError(msg)
        self.directory = Path(directory)
        created_folder = open_folder(self.directory, create=create)
        self.schema, self.version, self.registry = schema, version, registry
        self.keep_last, self.keep_best = keep_last, keep_best
        self.best_metric, self.mode, self.async_save = best_metric, mode, async_save
        settings = StepSettings(schema, version, registry, rule, async_save)
        self._sharded = sharded
        self._steps: FileSteps | ShardedSteps
        if sharded:  # collective step storage by ckptkit.distributed (imports torch)
            from ckptkit.manager._sharded import ShardedSteps

            # A sharded group is one writer: ckptkit.distributed commits each step
            # atomically from rank 0 (the folder lock is per process).
            self._steps = ShardedSteps(
                self.directory, settings, process_group=process_group
            )
        else:
            self._steps = FileSteps(
                self.directory, settings, created_folder=created_folder, signals=signals
            )
        self._closed = False
        # Runs at garbage collection or interpreter exit, whichever comes first:
        # waits for the save in flight, prints an error nobody collected, lets go
        # of the folder (and delivers a deferred preemption signal).
        self._finalizer = weakref.finalize(self, self._steps.close)

    def __repr__(self) -> str:
        return (
            f"CheckpointManager({str(self.directory)!r}, keep_last={self.keep_last}, "
            f"keep_best={self.keep_best}, async_save={self.async_save})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    @property
    def preempted(self) -> bool:
        """Whether a preemption signal arrived (``handle_preemption``).

        When it turns True, take one last ``save`` and stop: with the signal's
        default action deferred, the process ends once that save is durable.
        """
        return self._steps.preempted

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
        the caller may change its tensors and containers at once. When the step
        is durable and has passed full validation, steps beyond the retention
        rule are deleted. After a preemption signal whose default action was
        deferred, the save is synchronous and the process ends once it is durable.

        Args:
            step: The step number (0 to 2**63 - 1); saving an existing step
                replaces it.
            state: The state, as for ``ckptkit.save``.
            metrics: Numbers stored with the step (``best_metric`` ranks by one).
            status: ``"complete"`` or ``"in_progress"`` (still a step).

        Raises:
            SerializationError: A leaf ckptkit cannot store (raised here, at once).
            TypeError: A step or metric of the wrong type.
            ValueError: A step out of range or an unknown status.
            FileExistsError: The step's file is one this manager did not write
                (a symbolic link, a plain torch file, another schema's step).
            CheckpointError: The previous asynchronous save failed (or, without
                ``async_save``, this one did); ``OSError`` from the disk likewise.
            RuntimeError: The manager is closed.
        """
        if self._closed:
            msg = (
                f"{self!r} is closed: open a new CheckpointManager on the folder "
                "to save again"
            )
            raise RuntimeError(msg)
        if self._steps.save(step, state, metrics=metrics, status=status):
            self.close()  # ends the process with the deferred signal

    def wait(self) -> None:
        """Block until the save in flight is durable; raise its error, if any.

        Raises:
            Exception: Whatever the background save raised (``CheckpointError``,
                ``OSError``, ...), once.
        """
        self._steps.wait()

    def steps(self) -> list[int]:
        """Durable steps whose header passes quick validation, oldest first.

        An asynchronous save in flight is not a step yet. A step that a full read
        found damaged is left out from then on (in this manager), and so are
        files named like steps that the manager did not write.

        Returns:
            The step numbers.
        """
        return [r.step for r in self._steps.records()]

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
        ranked = best_steps(self._steps.records(), self.best_metric, self.mode, 1)
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
            CheckpointNotFoundError: No such step, or no valid step at all (the
                message says so when this manager created the folder just now).
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
        if self._sharded != (state is not None):
            msg = (
                "restore(state=...) fills a state in place and needs sharded=True; "
                "a sharded manager needs the state to fill"
            )
            raise ValueError(msg)
        return self._steps.restore(step, state=state, map_location=map_location)

    def close(self) -> None:
        """Wait for the save in flight, free the host buffer, let go of the folder.

        Raises a pending background error. After a preemption signal whose
        default action was deferred, the process then ends with that signal.
        Calling it again does nothing. ``steps``/``latest``/``best``/``restore``
        still work afterwards; ``save`` does not.

        Raises:
            Exception: Whatever the last background save raised, if not yet raised.
        """
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._steps.close()
