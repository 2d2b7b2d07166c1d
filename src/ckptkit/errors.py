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
    └── MigrationError                  a broken registry or a failing migration step
        └── MissingMigrationError       no chain of steps between two versions
    SerializationError (TypeError)      a state leaf ckptkit cannot store (on save)
"""

from __future__ import annotations

import os
from typing import Literal

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


class MigrationError(CheckpointError):
    """A migration registry is inconsistent, or a migration step failed."""

    kind: ErrorKind = "incompatible"

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(path, reason)


class MissingMigrationError(MigrationError):
    """No chain of registered steps leads from one version to another."""


class SerializationError(TypeError):
    """A state leaf has a type ckptkit does not store (raised by ``save``)."""


__all__ = [
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointIncompatibleError",
    "CheckpointNotFoundError",
    "ChecksumMismatchError",
    "ErrorKind",
    "IncompleteCheckpointError",
    "MigrationError",
    "MissingMigrationError",
    "SchemaMismatchError",
    "SerializationError",
    "TruncatedCheckpointError",
    "UnsafeCheckpointError",
    "UnsupportedVersionError",
]
