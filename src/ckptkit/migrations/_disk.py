"""``ckptkit.migrate``: upgrade a checkpoint file on disk, safely.

Order of a migration on disk: read and verify the source, run every step in
memory, and only then create the backup and write the result atomically (same
durability as ``save``). A step that raises therefore leaves the folder exactly as
it was; a write that fails removes the backup it created, unless the original
only survives in that backup.
"""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs
from ckptkit._file.atomic import atomic_write
from ckptkit._file.format import backup_name, upgraded_name
from ckptkit._file.reader import ReadRequest, inspect_file, read_checkpoint
from ckptkit._file.streams import write_all
from ckptkit._file.writer import HeaderFields, write_checkpoint
from ckptkit.errors import MigrationError, SerializationError
from ckptkit.migrations._chain import parse_step_version
from ckptkit.migrations._checkpoints import refuse_incompatible
from ckptkit.migrations._diff import StateChange, diff_states
from ckptkit.migrations._run import run_chain

if TYPE_CHECKING:
    import os

    from ckptkit.info import CheckpointInfo, MigrationRecord
    from ckptkit.migrations._chain import Migration
    from ckptkit.migrations._registry import MigrationRegistry
    from ckptkit.types import PathLike, StateTree

# Read the whole source, every checksum checked, before any step runs.
_FULL_READ = ReadRequest(verify=True, use_mmap=False, keys=None)

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
    if fs.exists(first) and fs.exists(second):
        return fs.same_file(first, second)
    return fs.realpath(first) == fs.realpath(second)


class ExistingFileError(FileExistsError):
    """``migrate`` would write over a file it was not asked to replace.

    ``role`` (``"output"`` or ``"backup"``) says which of migrate's files exists.
    """

    def __init__(self, path: Path, reason: str, role: str) -> None:
        super().__init__(errno.EEXIST, reason, str(path))
        self.role = role

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _taken(path: Path) -> bool:
    # A link counts even when it leads nowhere: writing "over" it would replace
    # a file ckptkit did not write.
    return fs.exists(path) or fs.is_symlink(path)


def refuse_overwrite(source: Path, target: Path, backup: Path | None) -> None:
    """Refuse to replace a file the caller did not name as the migrated one.

    Raises:
        ExistingFileError: ``target`` (other than the source) or ``backup`` exists.
    """
    if target != source and _taken(target):
        reason = "output exists; remove it or choose another output"
        raise ExistingFileError(target, reason, "output")
    if backup is not None and _taken(backup):
        reason = (
            f"a backup of {source.name} at this version already exists; "
            "move it away, or migrate without a backup"
        )
        raise ExistingFileError(backup, reason, "backup")


def _link_or_copy(source: Path, backup: Path) -> None:
    """Keep the original: a hard link (no bytes copied), else a durable copy."""
    try:
        fs.link(source, backup)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links
        with atomic_write(backup) as handle, fs.open_read(source) as original:
            while chunk := fs.read(original, _COPY_CHUNK_BYTES):
                write_all(handle, chunk)


def write_migrated(
    source: Path,
    target: Path,
    state: StateTree,
    fields: HeaderFields,
    backup: Path | None,
) -> None:
    """Write the migrated state to ``target`` atomically, keeping a backup first.

    Raises:
        MigrationError: The migrated state cannot be saved (the message says so).
    """
    original = fs.stat(source)
    made_backup = False
    try:
        if backup is not None:
            try:
                _link_or_copy(source, backup)
            except FileExistsError:
                raise  # the name was taken meanwhile: that file is not ours
            except BaseException:
                # A copy renamed into place before its directory fsync failed is
                # ours (refuse_overwrite saw the name free).
                made_backup = _taken(backup)
                raise
            made_backup = True
            fs.fsync_directory(backup.parent)
        write_checkpoint(target, state, fields)
    except BaseException as error:
        if made_backup and backup is not None and _is_still(source, original):
            # The original is still in place: remove our backup. A failure to do
            # so is not reported over the error that made the migration fail: the
            # backup left is a byte-identical copy of the original.
            with contextlib.suppress(OSError):
                fs.unlink(backup, missing_ok=True)
                fs.fsync_directory(backup.parent)
        if isinstance(error, SerializationError):
            raise MigrationError(
                f"the state migrated to {fields.version} cannot be saved: {error}",
                source,
            ) from error
        raise


def _is_still(path: Path, original: os.stat_result) -> bool:
    """True while ``path`` is the very file that was stat'ed as ``original``."""
    try:
        now = fs.stat(path)
    except OSError:  # gone, or unknown: then the backup is kept, to be safe
        return False
    return (now.st_dev, now.st_ino) == (original.st_dev, original.st_ino)


@dataclass(frozen=True)
class MigrationResult:
    """What ``ckptkit.migrate`` did (or, with ``dry_run``, would do) to one file.

    Attributes:
        path: The checkpoint that was read.
        output: The migrated checkpoint (``path`` itself when migrated in place; a
            derived name next to a legacy file when no output was given).
        backup: Where the original was kept (None without a backup).
        from_version: Version of the file that was read.
        to_version: Version of the migrated state.
        chain: The steps, in order (empty when the file was already there).
        applied: History records of the steps run (written to ``output``'s
            header, after the file's earlier history).
        changes: Keys added, removed, or changed in type, dtype, shape or value.
        dry_run: True when nothing was written.
        written: True when ``output`` (and ``backup``) were written.
    """

    path: Path
    output: Path
    backup: Path | None
    from_version: str
    to_version: str
    chain: tuple[Migration, ...]
    applied: tuple[MigrationRecord, ...]
    changes: tuple[StateChange, ...]
    dry_run: bool
    written: bool

    @property
    def is_up_to_date(self) -> bool:
        """True when the file was already at the target and nothing needed writing."""
        return not self.chain and self.output == self.path

    def describe(self) -> str:
        """What was (or would be) done, for people: a headline, steps and changes.

        Returns:
            Lines joined by newlines.
        """
        if self.is_up_to_date:
            return f"up to date: {self.path} (version {self.from_version})"
        verb = "would migrate" if self.dry_run else "migrated"
        steps = "1 step" if len(self.chain) == 1 else f"{len(self.chain)} steps"
        head = f"{verb} {self.path}: {self.from_version} -> {self.to_version} ({steps})"
        if self.output != self.path:
            head += f" into {self.output}"
        if self.backup is not None:
            keep = "would keep" if self.dry_run else "kept"
            head += f"; {keep} the original as {self.backup}"
        lines = [head]
        lines.extend(
            f"  step {m.from_version} -> {m.to_version}: {m.name}" for m in self.chain
        )
        lines.extend(f"  {change}" for change in self.changes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON data (one entry of ``ckptkit migrate --json``).

        Returns:
            Every field; paths as text, ``chain`` as ``{"from", "to", "step"}``
            objects, ``applied`` as history records, ``changes`` as
            ``{"key", "kind", "what", "before", "after"}`` objects.
        """
        return {
            "path": str(self.path),
            "output": str(self.output),
            "backup": None if self.backup is None else str(self.backup),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "chain": [
                {"from": m.from_version, "to": m.to_version, "step": m.name}
                for m in self.chain
            ],
            "applied": [record.to_json() for record in self.applied],
            "changes": [
                {
                    "key": c.key,
                    "kind": c.kind,
                    "what": list(c.what),
                    "before": c.before,
                    "after": c.after,
                }
                for c in self.changes
            ],
            "dry_run": self.dry_run,
            "written": self.written,
        }


def migrate(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    registry: MigrationRegistry,
    to_version: str | None = None,
    *,
    output: PathLike | None = None,
    backup: bool = True,
    dry_run: bool = False,
) -> MigrationResult:
    """Upgrade a checkpoint file on disk with ``registry``'s chain.

    The file is read and fully verified, every step runs in memory, and only then
    is the result written atomically (same durability as ``save``) with the steps
    appended to the header's history. Migrated in place with ``backup``, the
    original is kept next to it as ``NAME.v<old version>.bak``. Legacy 0.x files
    are never changed: the result goes to ``output``, or to ``STEM.v<version>.ckpt``
    next to them. A failing step leaves every file as it was.

    Args:
        path: The checkpoint to upgrade.
        registry: The schema's migrations.
        to_version: Target version; defaults to ``registry.current``.
        output: Write the result there instead of in place (must not exist).
        backup: Keep the original when migrating in place.
        dry_run: Run the steps in memory, report the chain and changes, write
            nothing.

    Returns:
        What was (or would be) done; ``result.output`` names the migrated file.

    Raises:
        CheckpointError: The file is missing, damaged or of another schema
            (``SchemaMismatchError``), or newer than ``current``
            (``UnsupportedVersionError``).
        MigrationError: No chain, a broken registry, or a failing step.
        FileExistsError: ``output`` or the backup name already exists.

    Example:
        >>> import ckptkit, tempfile, pathlib
        >>> registry = ckptkit.MigrationRegistry(schema="demo")
        >>> @registry.migration("1.0", "1.1")
        ... def add_epoch(state):
        ...     return {**state, "epoch": 0}
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(target, {"step": 5}, schema="demo")
        >>> result = ckptkit.migrate(target, registry)
        >>> ckptkit.inspect(target).version, result.backup.name
        ('1.1', 'a.ckpt.v1.0.bak')
    """
    source = Path(path)
    header = inspect_file(source)
    if not header.legacy:  # refuse before reading any tensor bytes
        refuse_incompatible(header, registry, to_version)
    final = registry.current if to_version is None else to_version
    if parse_step_version(final, "to_version").is_legacy:
        msg = "cannot migrate to the legacy version 0.x: files are written at 1.0 or up"
        raise MigrationError(msg, source)
    target = plan_output(header, output, final)
    checkpoint = read_checkpoint(source, _FULL_READ)
    info = checkpoint.info
    chain = refuse_incompatible(info, registry, to_version)
    backup_path = (
        source.with_name(backup_name(source.name, info.version))
        if backup and target == source and chain
        else None
    )
    refuse_overwrite(source, target, backup_path)
    state, applied = run_chain(checkpoint.state, chain, path=source)
    written = not dry_run and (bool(chain) or target != source)
    if written:
        fields = HeaderFields(
            version=chain[-1].to_version if chain else info.version,
            schema=registry.schema,
            status=info.status,
            metadata=info.metadata,
            history=(*info.history, *applied),
        )
        write_migrated(source, target, state, fields, backup_path)
    return MigrationResult(
        path=source,
        output=target,
        backup=backup_path,
        from_version=info.version,
        to_version=chain[-1].to_version if chain else info.version,
        chain=tuple(chain),
        applied=applied,
        changes=diff_states(checkpoint.state, state),
        dry_run=dry_run,
        written=written,
    )
