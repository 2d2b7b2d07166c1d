"""The ckptkit error tree.

Every error names the file and what to do about it. Each one also subclasses the
matching built-in, so ``except FileNotFoundError`` keeps working::

    CheckpointError (Exception)             .path, .kind, .reason
    ├── CheckpointNotFoundError (+FileNotFoundError)       kind "missing"
    ├── CheckpointCorruptError (+ValueError)               kind "corrupted"
    │   ├── TruncatedCheckpointError
    │   └── ChecksumMismatchError
    ├── CheckpointIncompatibleError (+ValueError)          kind "incompatible"
    │   ├── UnsupportedVersionError     newer or unknown format / version
    │   ├── UnsafeCheckpointError       legacy pickle needs an unlisted global
    │   └── SchemaMismatchError         the file's schema is not the one expected
    ├── IncompleteCheckpointError       status "in_progress" where "complete" is needed
    ├── FolderLockedError               another CheckpointManager writes the folder
    └── MigrationError                  a broken registry or a failing migration step
        └── MissingMigrationError       no chain of steps between two versions
    SerializationError (TypeError)      a state leaf ckptkit cannot store (on save)

:func:`exit_code_for` is the one mapping from an error to a command line's exit
code (both ``ckptkit`` and ``virnucpro-app`` use it).
"""

from __future__ import annotations

import os
from typing import Literal

from ckptkit.types import INTERRUPTED_EXIT_CODE, ExitCode

ErrorKind = Literal["missing", "corrupted", "incompatible"]


class CheckpointError(Exception):
    """Base of all checkpoint problems.

    Attributes:
        path: The checkpoint file concerned (``None`` when no file is involved).
        kind: ``"missing"``, ``"corrupted"`` or ``"incompatible"``.
        reason: One line a person can act on.
    """

    kind: ErrorKind = "corrupted"

    def __init__(self, path: str | os.PathLike[str] | None, reason: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (or is empty)."""

    kind: ErrorKind = "missing"


class CheckpointCorruptError(CheckpointError, ValueError):
    """The file is damaged: unreadable header, bad offsets, checksum mismatch."""

    kind: ErrorKind = "corrupted"


class TruncatedCheckpointError(CheckpointCorruptError):
    """The file is shorter (or longer) than its header says."""


class ChecksumMismatchError(CheckpointCorruptError):
    """A tensor's or the header's checksum does not match its bytes."""


class CheckpointIncompatibleError(CheckpointError, ValueError):
    """The file is intact but this reader cannot or must not use it."""

    kind: ErrorKind = "incompatible"


class UnsupportedVersionError(CheckpointIncompatibleError):
    """The container format or checkpoint version is newer than this reader."""


class UnsafeCheckpointError(CheckpointIncompatibleError):
    """A legacy pickle needs a global outside the safe allowlist; it was not run."""


class SchemaMismatchError(CheckpointIncompatibleError):
    """The checkpoint's schema is not the one the caller expects."""


class IncompleteCheckpointError(CheckpointError):
    """The checkpoint has status ``in_progress`` where a complete one was required."""

    kind: ErrorKind = "incompatible"


class FolderLockedError(CheckpointError):
    """Another ``CheckpointManager`` holds the folder (one writer per folder).

    ``path`` is the folder; the message names the holder (process and host) and
    its lock file.
    """

    kind: ErrorKind = "incompatible"


class MigrationError(CheckpointError):
    """A migration registry is inconsistent, or a migration step failed."""

    kind: ErrorKind = "incompatible"

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(path, reason)


class MissingMigrationError(MigrationError):
    """No chain of registered steps leads from one version to another."""


class SerializationError(TypeError):
    """A state leaf has a type ckptkit does not store (raised by ``save``)."""


def exit_code_for(error: BaseException) -> int | None:
    """The exit code a command line ends with after ``error``, reported in one line.

    - any :class:`CheckpointError` (missing, damaged, incompatible checkpoint, or a
      failed migration): ``ExitCode.CHECKPOINT`` (3);
    - ``OSError`` (an unreadable path, a full disk) and ``ValueError`` (a bad
      value given by a person): ``ExitCode.FAILURE`` (1);
    - ``KeyboardInterrupt``: ``INTERRUPTED_EXIT_CODE`` (130);
    - anything else: None, a bug, which should propagate with its traceback.

    Args:
        error: The exception caught.

    Returns:
        The exit code, or None for an unexpected error.

    Example:
        >>> import ckptkit
        >>> ckptkit.exit_code_for(ckptkit.CheckpointNotFoundError("a.ckpt", "gone"))
        <ExitCode.CHECKPOINT: 3>
        >>> ckptkit.exit_code_for(KeyError("x")) is None
        True
    """
    # CheckpointError first: most of its subclasses are also OSError or ValueError.
    if isinstance(error, CheckpointError):
        return ExitCode.CHECKPOINT
    if isinstance(error, (OSError, ValueError)):
        return ExitCode.FAILURE
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED_EXIT_CODE
    return None


__all__ = [
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointIncompatibleError",
    "CheckpointNotFoundError",
    "ChecksumMismatchError",
    "ErrorKind",
    "FolderLockedError",
    "IncompleteCheckpointError",
    "MigrationError",
    "MissingMigrationError",
    "SchemaMismatchError",
    "SerializationError",
    "TruncatedCheckpointError",
    "UnsafeCheckpointError",
    "UnsupportedVersionError",
    "exit_code_for",
]
