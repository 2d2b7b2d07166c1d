"""How a ``CheckpointManager`` restores: the newest good step, past damaged ones.

Every step is read with full verification. Without a step number the files are
tried from the highest down: a damaged one is recorded in the folder's ledger and
skipped (with a :class:`CheckpointFallbackWarning`), a foreign one (not written by
a manager as that step) is passed over, and one of another schema or a newer
version raises: it needs another reader, not an older checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckptkit._api import load
from ckptkit._file import fs
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointNotFoundError,
    SchemaMismatchError,
)
from ckptkit.manager._fallback import restore_newest
from ckptkit.manager._steps import StepFolder, check_step

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit.info import Checkpoint
    from ckptkit.migrations import MigrationRegistry


_NEW_FOLDER = (
    " (the folder did not exist: this manager created it just now; if you meant "
    "to resume a run, check the path, and pass create=False to refuse a missing "
    "folder)"
)


@dataclass(frozen=True)
class Restorer:
    """Loads the steps of one folder for its manager."""

    folder: StepFolder
    schema: str | None
    version: str
    registry: MigrationRegistry | None
    created_folder: bool  # the manager created the folder: a mistyped path?

    def restore(self, step: int | None, map_location: Any) -> Checkpoint:
        """``CheckpointManager.restore`` (see there), after the save in flight."""
        if step is not None:
            path = self.folder.path_of(check_step(step))
            if fs.is_symlink(path):
                raise CheckpointNotFoundError(
                    path,
                    "is a symbolic link, not a step this manager wrote: load the "
                    "file it points to with ckptkit.load",
                )
            return self.load_checked(path, map_location)
        try:
            return restore_newest(
                self.folder.step_files(),
                lambda path: self.load_checked(path, map_location),
                folder=self.folder,
                is_another_step=self.folder.is_foreign,
                # here <- FileSteps.restore <- CheckpointManager.restore <- its caller
                stacklevel=4,
            )
        except CheckpointNotFoundError as error:
            if not self.created_folder:
                raise
            raise CheckpointNotFoundError(
                error.path, error.reason + _NEW_FOLDER
            ) from None

    def load_checked(self, path: Path, map_location: Any) -> Checkpoint:
        """Load one step with full verification; record it in the ledger if damaged.

        Raises:
            CheckpointCorruptError: The step is damaged (recorded first).
            SchemaMismatchError: The step is of another schema.
        """
        try:
            checkpoint = load(
                path,
                map_location=map_location,
                verify="full",
                registry=self.registry,
                to_version=None if self.registry is None else self.version,
            )
        except CheckpointCorruptError as error:
            self.folder.mark_damaged(path, error.reason)
            raise
        found = checkpoint.info.schema
        if self.registry is None and self.schema is not None and found != self.schema:
            reason = f"schema {found!r}, expected {self.schema!r}"
            raise SchemaMismatchError(path, reason)
        return checkpoint
