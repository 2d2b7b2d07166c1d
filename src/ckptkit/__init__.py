"""ckptkit: durable, versioned, pickle-free checkpoints for PyTorch training state.

The public surface is declared here once; everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptkit._atomic import remove_stale_temp_files as _remove_stale_temp_files
from ckptkit._format import CHECKPOINT_VERSION, LEGACY_VERSION
from ckptkit._version import library_version as _library_version
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointIncompatibleError,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    IncompleteCheckpointError,
    MigrationError,
    MissingMigrationError,
    SchemaMismatchError,
    SerializationError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    UnsupportedVersionError,
)
from ckptkit.info import Checkpoint, CheckpointInfo, MigrationRecord, TensorInfo
from ckptkit.ledger import FailureLedger, LedgerEntry
from ckptkit.types import ExitCode, PathLike, StateTree, Status

if TYPE_CHECKING:
    from ckptkit._load import inspect, load
    from ckptkit._save import save
    from ckptkit._tree_validation import TreeReport, validate_tree
    from ckptkit.manager import CheckpointFallbackWarning, CheckpointManager
    from ckptkit.migrations import (
        Migration,
        MigrationRegistry,
        MigrationResult,
        StateChange,
        migrate,
    )
    from ckptkit.validation import ValidationReport, validate

# Names whose modules import torch are loaded on first use (PEP 562), so that
# `import ckptkit` (and `ckptkit --help`, and apps importing its error types)
# stays fast; `from ckptkit import save` works as usual.
_LAZY = {
    "inspect": "ckptkit._load",
    "load": "ckptkit._load",
    "save": "ckptkit._save",
    "TreeReport": "ckptkit._tree_validation",
    "validate_tree": "ckptkit._tree_validation",
    "CheckpointFallbackWarning": "ckptkit.manager",
    "CheckpointManager": "ckptkit.manager",
    "Migration": "ckptkit.migrations",
    "MigrationRegistry": "ckptkit.migrations",
    "MigrationResult": "ckptkit.migrations",
    "StateChange": "ckptkit.migrations",
    "migrate": "ckptkit.migrations",
    "ValidationReport": "ckptkit.validation",
    "validate": "ckptkit.validation",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        msg = f"module 'ckptkit' has no attribute {name!r}"
        raise AttributeError(msg)
    from importlib import import_module

    value = getattr(import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = _library_version()

if True:  # keep the helper below out of the import block for readability
    from pathlib import Path as _Path


def cleanup(directory: PathLike) -> list[_Path]:
    """Remove temporary files left in ``directory`` by killed writers.

    Also finishes sharded saves (``ckptkit.distributed``) interrupted by a crash:
    a staging folder is removed, or, when the checkpoint it was replacing is
    gone, renamed into its place (the old checkpoint, moved aside, likewise).
    A temporary file or folder whose writer process is still alive is left alone.

    Args:
        directory: The folder holding checkpoints.

    Returns:
        The files and folders removed, and the folders renamed back into place
        (under their temporary names).

    Example:
        >>> import ckptkit, tempfile
        >>> ckptkit.cleanup(tempfile.mkdtemp())
        []
    """
    from ckptkit.distributed._commit import recover

    folder = _Path(directory)
    removed = _remove_stale_temp_files(folder)
    removed += [a.path for a in recover(folder) if a.action != "kept"]
    return removed


__all__ = [
    "CHECKPOINT_VERSION",
    "LEGACY_VERSION",
    "Checkpoint",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointFallbackWarning",
    "CheckpointIncompatibleError",
    "CheckpointInfo",
    "CheckpointManager",
    "CheckpointNotFoundError",
    "ChecksumMismatchError",
    "ExitCode",
    "FailureLedger",
    "IncompleteCheckpointError",
    "LedgerEntry",
    "Migration",
    "MigrationError",
    "MigrationRecord",
    "MigrationRegistry",
    "MigrationResult",
    "MissingMigrationError",
    "PathLike",
    "SchemaMismatchError",
    "SerializationError",
    "StateChange",
    "StateTree",
    "Status",
    "TensorInfo",
    "TreeReport",
    "TruncatedCheckpointError",
    "UnsafeCheckpointError",
    "UnsupportedVersionError",
    "ValidationReport",
    "__version__",
    "cleanup",
    "inspect",
    "load",
    "migrate",
    "save",
    "validate",
    "validate_tree",
]
