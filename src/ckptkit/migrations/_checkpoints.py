"""A registry applied to checkpoints: which it refuses, and migrating a loaded one.

Shared by ``ckptkit.load(..., registry=)`` (in memory) and ``ckptkit.migrate`` (on
disk), so that both refuse the same files with the same messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptkit._file.versions import parse_version
from ckptkit.errors import (
    MigrationError,
    SchemaMismatchError,
    UnsupportedVersionError,
)
from ckptkit.info import Checkpoint
from ckptkit.migrations._run import run_chain

if TYPE_CHECKING:
    from ckptkit.info import CheckpointInfo
    from ckptkit.migrations._chain import Migration
    from ckptkit.migrations._registry import MigrationRegistry


def refuse_incompatible(
    info: CheckpointInfo, registry: MigrationRegistry, to_version: str | None
) -> list[Migration]:
    """Check a checkpoint against ``registry`` and return the chain it needs.

    Legacy files have no schema and are accepted; a ckptkit file must carry the
    registry's schema, or none when the registry accepts unnamed files.

    Raises:
        SchemaMismatchError: The file belongs to another schema.
        UnsupportedVersionError: The file is newer than the registry's current.
        MigrationError: No chain leads to ``to_version`` (message names the file).
    """
    if not info.legacy and info.schema != registry.schema:
        if info.schema is not None:
            raise SchemaMismatchError(
                info.path,
                f"checkpoint schema {info.schema!r} is not {registry.schema!r}: it "
                "belongs to another project or model; migrate it with that registry",
            )
        if not registry.accept_unnamed:
            raise SchemaMismatchError(
                info.path,
                f"checkpoint has no schema (saved without schema=); the "
                f"{registry.schema!r} registry takes such files only when created "
                "with accept_unnamed=True",
            )
    if parse_version(info.version) > parse_version(registry.current):
        raise UnsupportedVersionError(
            info.path,
            f"checkpoint version {info.version} was written by a newer version of "
            f"{registry.schema}; upgrade to >= {info.version} (this code reads "
            f"{registry.schema} checkpoints up to {registry.current})",
        )
    try:
        return registry.path(info.version, to_version)
    except MigrationError as error:
        raise type(error)(error.reason, info.path) from error


def migrate_loaded(
    checkpoint: Checkpoint, registry: MigrationRegistry, to_version: str | None
) -> Checkpoint:
    """Migrate a freshly loaded checkpoint in memory (its file is not touched)."""
    chain = refuse_incompatible(checkpoint.info, registry, to_version)
    state, applied = run_chain(checkpoint.state, chain, path=checkpoint.info.path)
    return Checkpoint(state=state, info=checkpoint.info, applied=applied)
