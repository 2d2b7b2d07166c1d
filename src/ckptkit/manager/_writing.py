"""How a ``CheckpointManager`` writes a step and lets go of its folder.

``write_step`` is the job of every save (on the calling thread or the background
one): write the step like ``ckptkit.save``, read it back in full, then apply the
retention rule to this manager's steps only. ``shut_down`` runs at ``close``,
garbage collection or interpreter exit, whichever comes first.
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING

from ckptkit._file.writer import HeaderFields, write_encoded
from ckptkit.errors import CheckpointCorruptError
from ckptkit.manager._retention import steps_to_delete
from ckptkit.validation import validate

if TYPE_CHECKING:
    from ckptkit._file.codec import Encoded
    from ckptkit.manager._background import BackgroundSave
    from ckptkit.manager._lock import FolderLock
    from ckptkit.manager._preemption import PreemptionHandler
    from ckptkit.manager._retention import RetentionRule
    from ckptkit.manager._sharded import ShardedSteps
    from ckptkit.manager._steps import StepFolder


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


def shut_down(
    background: BackgroundSave,
    folder: StepFolder,
    lock: FolderLock | None,
    preemption: PreemptionHandler | None,
    sharded: ShardedSteps | None = None,
) -> None:
    """Wait for the save in flight, let go of the folder, deliver a deferred signal.

    Raises:
        Exception: Whatever the last background save raised, if not yet raised.
    """
    error: BaseException | None = None
    try:
        if sharded is not None:
            sharded.close()
        background.finish()
    except BaseException as caught:  # noqa: BLE001 - raised below, after the rest
        error = caught
    folder.index_writable = False
    if lock is not None:
        lock.release()
    if preemption is not None:
        if preemption.deferred is not None and error is not None:
            # The process ends in the next line: the error cannot be raised.
            print(f"ckptkit: the last save failed: {error}", file=sys.stderr)  # noqa: T201
        preemption.deliver_deferred()
    if error is not None:
        raise error
