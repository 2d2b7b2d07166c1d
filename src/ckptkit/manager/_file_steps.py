"""The single-file steps of a ``CheckpointManager``: one file per step.

:class:`FileSteps` is the engine behind every manager that is not sharded (the
sharded one is ``_sharded.ShardedSteps``): it holds the folder's lock, saves on
the calling thread or a background one, restores, and lets go at ``close``.
``write_step`` is the job of every save: write the step like ``ckptkit.save``,
read it back in full, then apply the retention rule to this manager's steps only.

Every step is restored with full verification. Without a step number the files
are tried from the highest down: a damaged one is recorded in the folder's ledger
and skipped (with a :class:`CheckpointFallbackWarning`), a foreign one (not
written by a manager as that step) is passed over, and one of another schema or a
newer version raises: it needs another reader, not an older checkpoint.
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, Any

from ckptkit._api import load
from ckptkit._file import fs
from ckptkit._file.atomic import remove_stale_temp_files
from ckptkit._file.codec import encode_state
from ckptkit._file.writer import HeaderFields, write_encoded
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointNotFoundError,
    SchemaMismatchError,
)
from ckptkit.manager._background import BackgroundSave
from ckptkit.manager._fallback import restore_newest
from ckptkit.manager._lock import FolderLock
from ckptkit.manager._options import checked_status
from ckptkit.manager._preemption import PreemptionHandler
from ckptkit.manager._retention import step_metadata, steps_to_delete
from ckptkit.manager._snapshot import HostSnapshotBuffer
from ckptkit.manager._steps import StepFolder, check_step
from ckptkit.validation import validate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from ckptkit._file.codec import Encoded
    from ckptkit.info import Checkpoint
    from ckptkit.manager._options import StepSettings
    from ckptkit.manager._retention import RetentionRule, StepRecord
    from ckptkit.types import StateTree

_NEW_FOLDER = (
    " (the folder did not exist: this manager created it just now; if you meant "
    "to resume a run, check the path, and pass create=False to refuse a missing "
    "folder)"
)


class FileSteps:
    """The engine behind ``CheckpointManager`` without ``sharded``.

    It takes the folder's lock (``FolderLockedError`` if another manager holds
    it) and removes the temporary files of killed writers; ``created_folder``
    (the manager made the folder just now) names a likely mistyped path when a
    restore finds nothing.
    """

    def __init__(
        self,
        directory: Path,
        settings: StepSettings,
        *,
        created_folder: bool,
        signals: tuple[int, ...],
    ) -> None:
        self._lock = FolderLock.acquire(directory)
        try:
            remove_stale_temp_files(directory)
        except BaseException:
            self._lock.release()
            raise
        self.settings = settings
        self.folder = StepFolder(directory)
        self._created_folder = created_folder
        self.buffer = HostSnapshotBuffer()
        self._background = BackgroundSave()
        self._in_flight: int | None = None
        self._closed = False
        self._preemption = (
            PreemptionHandler(signals, self._background.join) if signals else None
        )

    @property
    def preempted(self) -> bool:
        return self._preemption is not None and self._preemption.received is not None

    def save(
        self,
        step: int,
        state: StateTree,
        *,
        metrics: Mapping[str, float] | None,
        status: str,
    ) -> bool:
        """Save ``state`` as ``step`` (see ``CheckpointManager.save``).

        Returns True when a deferred preemption signal is waiting and this save
        was durable: the manager closes now, which ends the process.
        """
        self.wait()
        step = check_step(step)
        status = checked_status(status)
        metadata = step_metadata(step, metrics)
        refuse_foreign(self.folder, step, self.settings.schema)
        last = self._preemption is not None and self._preemption.deferred is not None
        if not self.settings.async_save or last:
            self._commit(step, encode_state(state), status, metadata)
            return last
        job = self.buffer.copy_for_background(state)
        self._in_flight = step
        self._background.start(
            lambda: self._commit(step, job(), status, metadata),
            name=f"ckptkit-save-{step}",
        )
        return False

    def _commit(
        self, step: int, encoded: Encoded, status: str, metadata: dict[str, Any]
    ) -> None:
        """Write the step and apply retention (the job of every save)."""
        settings = self.settings
        fields = HeaderFields(settings.version, settings.schema, status, metadata)
        try:
            write_step(self.folder, step, encoded, fields, settings.rule)
        finally:
            self._in_flight = None

    def wait(self) -> None:
        """Block until the save in flight is durable; raise its error, if any."""
        self._background.finish()

    def records(self) -> list[StepRecord]:
        """Durable steps whose header passes quick validation, oldest first."""
        return self.folder.records(exclude=self._in_flight)

    def restore(
        self, step: int | None, *, state: StateTree | None, map_location: Any
    ) -> Checkpoint:
        """Load a step, by default the newest good one (see the manager's)."""
        del state  # None: the manager takes a state to fill for sharded steps only
        self._background.join()
        checkpoint = self._restore(step, map_location)
        if self.settings.async_save and not self._closed:
            self.buffer.prepare_for(checkpoint.info, map_location)
        return checkpoint

    def _restore(self, step: int | None, map_location: Any) -> Checkpoint:
        if step is not None:
            path = self.folder.path_of(check_step(step))
            if fs.is_symlink(path):
                raise CheckpointNotFoundError(
                    path,
                    "is a symbolic link, not a step this manager wrote: load the "
                    "file it points to with ckptkit.load",
                )
            return self._load_checked(path, map_location)
        try:
            return restore_newest(
                self.folder.step_files(),
                lambda path: self._load_checked(path, map_location),
                folder=self.folder,
                is_another_step=self.folder.is_foreign,
                # here <- restore <- CheckpointManager.restore <- its caller
                stacklevel=4,
            )
        except CheckpointNotFoundError as error:
            if not self._created_folder:
                raise
            raise CheckpointNotFoundError(
                error.path, error.reason + _NEW_FOLDER
            ) from None

    def _load_checked(self, path: Path, map_location: Any) -> Checkpoint:
        """Load one step with full verification; record it in the ledger if damaged.

        Raises:
            CheckpointCorruptError: The step is damaged (recorded first).
            SchemaMismatchError: The step is of another schema.
        """
        registry, schema = self.settings.registry, self.settings.schema
        try:
            checkpoint = load(
                path,
                map_location=map_location,
                verify="full",
                registry=registry,
                to_version=None if registry is None else self.settings.version,
            )
        except CheckpointCorruptError as error:
            self.folder.mark_damaged(path, error.reason)
            raise
        found = checkpoint.info.schema
        if registry is None and schema is not None and found != schema:
            reason = f"schema {found!r}, expected {schema!r}"
            raise SchemaMismatchError(path, reason)
        return checkpoint

    def close(self) -> None:
        """Wait for the save in flight, let go of the folder, free the host buffer.

        Runs at ``close``, garbage collection or interpreter exit, whichever comes
        first; a deferred preemption signal is delivered last.

        Raises:
            Exception: Whatever the last background save raised, if not yet raised.
        """
        self._closed = True
        try:
            self._shut_down()
        finally:
            self.buffer.release()

    def _shut_down(self) -> None:
        error: BaseException | None = None
        try:
            self._background.finish()
        except BaseException as caught:  # noqa: BLE001 - raised below, after the rest
            error = caught
        self.folder.index_writable = False
        self._lock.release()
        if self._preemption is not None:
            if self._preemption.deferred is not None and error is not None:
                # The process ends in the next line: the error cannot be raised.
                print(f"ckptkit: the last save failed: {error}", file=sys.stderr)  # noqa: T201
            self._preemption.deliver_deferred()
        if error is not None:
            raise error


def refuse_foreign(folder: StepFolder, step: int, schema: str | None) -> None:
    """Refuse to replace a step file this manager did not write.

    Raises:
        FileExistsError: A symbolic link, a plain torch or safetensors file, a
            file without step metadata, or another schema's step.
    """
    path = folder.path_of(step)
    record = folder.record_of(step, path)
    if folder.is_foreign(step, path) or (
        record is not None and record.schema != schema
    ):
        raise FileExistsError(
            errno.EEXIST,
            f"step {step}'s file is not one this manager wrote (a symbolic link, "
            "a plain torch or safetensors file, a file without step metadata, "
            "or another schema's step): move it out of the folder, or save "
            "another step",
            str(path),
        )


def write_step(
    folder: StepFolder,
    step: int,
    encoded: Encoded,
    fields: HeaderFields,
    rule: RetentionRule,
) -> None:
    """Write ``step``, read it back in full, then delete steps beyond ``rule``.

    Raises:
        CheckpointCorruptError: The file failed validation right after writing
            (recorded in the folder's ledger).
        OSError: From the disk.
    """
    path = folder.path_of(step)
    write_encoded(path, encoded, fields)
    report = validate(path, level="full")
    if not report.ok or report.info is None:
        folder.mark_damaged(path, report.reason)
        reason = f"failed validation right after writing: {report.reason}"
        raise CheckpointCorruptError(path, reason)
    folder.note_written(step, path, report.info)
    # Only this manager's steps count and go: another schema's are left alone.
    records = [r for r in folder.records() if r.schema == fields.schema]
    doomed = set(steps_to_delete(records, new_step=step, rule=rule))
    folder.delete(r for r in records if r.step in doomed)
