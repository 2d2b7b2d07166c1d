"""ckptkit: durable, versioned, pickle-free checkpoints for PyTorch training state.

The public surface is declared here once; everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptkit._file.format import CHECKPOINT_VERSION, LEGACY_VERSION
from ckptkit._file.versions import library_version as _library_version
from ckptkit._lazy import lazy_names as _lazy_names
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointIncompatibleError,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    FolderLockedError,
    IncompleteCheckpointError,
    MigrationError,
    MissingMigrationError,
    SchemaMismatchError,
    SerializationError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    UnsupportedVersionError,
    exit_code_for,
)
from ckptkit.info import Checkpoint, CheckpointInfo, MigrationRecord, TensorInfo
from ckptkit.leaf_types import register_leaf_type, unregister_leaf_type
from ckptkit.ledger import FailureLedger, LedgerEntry
from ckptkit.types import ExitCode, PathLike, StateTree, Status

if TYPE_CHECKING:
    from ckptkit._api import cleanup, inspect, load, save
    from ckptkit.manager import CheckpointFallbackWarning, CheckpointManager
    from ckptkit.migrations import (
        Migration,
        MigrationRegistry,
        MigrationResult,
        StateChange,
        migrate,
    )
    from ckptkit.tree_validation import TreeReport, validate_tree
    from ckptkit.validation import ValidationReport, validate

# Names whose modules import torch are loaded on first use (PEP 562), so that
# `import ckptkit` (and `ckptkit --help`, and apps importing its error types)
# stays fast; `from ckptkit import save` works as usual.
_LAZY = {
    "cleanup": "ckptkit._api",
    "inspect": "ckptkit._api",
    "load": "ckptkit._api",
    "save": "ckptkit._api",
    "TreeReport": "ckptkit.tree_validation",
    "validate_tree": "ckptkit.tree_validation",
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


__getattr__, __dir__ = _lazy_names("ckptkit", _LAZY, globals())


__version__ = _library_version()

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
    "FolderLockedError",
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
    "exit_code_for",
    "inspect",
    "load",
    "migrate",
    "register_leaf_type",
    "save",
    "unregister_leaf_type",
    "validate",
    "validate_tree",
]
