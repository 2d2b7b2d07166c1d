"""Writing a migrated checkpoint: where it goes, the backup, and no litter on failure.

Order of a migration on disk: read and verify the source, run every step in
memory, and only then create the backup and write the result atomically (same
durability as ``save``). A step that raises therefore leaves the folder exactly as
it was; a write that fails removes the backup it created, unless the original
only survives in that backup.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ckptkit._atomic import atomic_write, fsync_directory
from ckptkit._format import backup_name, upgraded_name
from ckptkit._save import write_checkpoint
from ckptkit.errors import MigrationError, SerializationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ckptkit.info import CheckpointInfo, MigrationRecord
    from ckptkit.types import PathLike, StateTree

_COPY_CHUNK_BYTES = 16 << 20


def plan_output(info: CheckpointInfo, output: PathLike | None, version: str) -> Path:
    """Where the migrated checkpoint of ``info.path`` goes.

    Raises:
        MigrationError: ``output`` is a legacy file itself (never rewritten).
    """
    source = info.path
    if output is None:
        if info.legacy:
            return source.with_name(upgraded_name(source.name, version))
        return source
    target = Path(output)
    if info.legacy and _same_file(target, source):
        raise MigrationError(
            "legacy 0.x files are never changed in place; pass another output "
            "path (or none, for a derived name next to it)",
            source,
        )
    return source if _same_file(target, source) else target


def _same_file(first: Path, second: Path) -> bool:
    if first.exists() and second.exists():
        return first.samefile(second)
    return first.resolve() == second.resolve()


def planned_backup(source: Path, version: str) -> Path:
    """The name an in-place migration keeps the original under."""
    return source.with_name(backup_name(source.name, version))


def refuse_overwrite(source: Path, target: Path, backup: Path | None) -> None:
    """Refuse to replace a file the caller did not name as the migrated one.

    Raises:
        FileExistsError: ``target`` (other than the source) or ``backup`` exists.
    """
    if target != source and target.exists():
        msg = f"{target}: output exists; remove it or choose another output"
        raise FileExistsError(msg)
    if backup is not None and backup.exists():
        msg = (
            f"{backup}: a backup of {source.name} at this version already exists; "
            "move it away, or migrate without a backup"
        )
        raise FileExistsError(msg)


def _make_backup(source: Path, backup: Path) -> None:
    """Keep the original: a hard link (no bytes copied), else a durable copy."""
    try:
        os.link(source, backup)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links
        with atomic_write(backup) as handle, source.open("rb") as original:
            shutil.copyfileobj(original, handle, _COPY_CHUNK_BYTES)
    fsync_directory(backup.parent)


def write_migrated(  # noqa: PLR0913 - everything the new header needs
    info: CheckpointInfo,
    target: Path,
    state: StateTree,
    *,
    version: str,
    schema: str,
    history: Sequence[MigrationRecord],
    backup: Path | None,
) -> None:
    """Write the migrated state to ``target`` atomically, keeping a backup first.

    Raises:
        MigrationError: The migrated state cannot be saved (the message says so).
    """
    source = info.path
    original = source.stat()
    if backup is not None:
        _make_backup(source, backup)
    try:
        write_checkpoint(
            target,
            state,
            version=version,
            schema=schema,
            status=info.status,
            metadata=info.metadata,
            history=history,
        )
    except BaseException as error:
        if backup is not None and _is_still(source, original):
            backup.unlink(missing_ok=True)
            fsync_directory(backup.parent)
        if isinstance(error, SerializationError):
            raise MigrationError(
                f"the state migrated to {version} cannot be saved: {error}", source
            ) from error
        raise


def _is_still(path: Path, original: os.stat_result) -> bool:
    """True while ``path`` is the very file that was stat'ed as ``original``."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (original.st_dev, original.st_ino)
