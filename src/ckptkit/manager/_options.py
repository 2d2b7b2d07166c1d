"""What a ``CheckpointManager`` checks before it touches its folder, and keeps."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.versions import parse_version
from ckptkit.errors import CheckpointNotFoundError
from ckptkit.types import Status

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit.manager._retention import RetentionRule
    from ckptkit.migrations import MigrationRegistry


@dataclass(frozen=True)
class StepSettings:
    """The checked options every step of a manager is written and kept by."""

    schema: str | None
    version: str
    registry: MigrationRegistry | None
    rule: RetentionRule
    async_save: bool


def checked_schema(
    version: str, schema: str | None, registry: MigrationRegistry | None
) -> str | None:
    """The schema the steps carry, once version and schema agree with ``registry``.

    Raises:
        ValueError: A legacy version, or a version or schema the registry contradicts.
    """
    if parse_version(version).is_legacy:
        msg = "version '0.x' is legacy, read-only; save with a real one (e.g. '1.0')"
        raise ValueError(msg)
    if registry is None:
        return schema
    if version != registry.current:
        msg = (
            f"version {version!r} differs from the registry's current version "
            f"{registry.current!r}: pass version={registry.current!r}"
        )
        raise ValueError(msg)
    if schema is not None and schema != registry.schema:
        msg = (
            f"schema {schema!r} differs from the registry's {registry.schema!r}: "
            f"pass schema={registry.schema!r} or leave it out"
        )
        raise ValueError(msg)
    return registry.schema


def open_folder(directory: Path, *, create: bool) -> bool:
    """Make sure ``directory`` is a folder; return whether it was created now.

    Raises:
        CheckpointNotFoundError: It is missing and ``create`` is False.
        NotADirectoryError: It is a file.
    """
    if fs.is_dir(directory):
        return False
    if fs.exists(directory):
        raise NotADirectoryError(
            errno.ENOTDIR,
            "is a file, not a folder: give CheckpointManager the folder that "
            "holds (or will hold) the step files",
            str(directory),
        )
    if not create:
        raise CheckpointNotFoundError(
            directory,
            "folder does not exist: check the path (a resumed run's folder must "
            "exist), or pass create=True to start a new run there",
        )
    fs.mkdir(directory)
    return True


def checked_status(status: str) -> str:
    """``status`` as stored.

    Raises:
        ValueError: Not a status; the message lists the two there are.
    """
    try:
        return Status(status).value
    except ValueError:
        msg = f"status must be 'complete' or 'in_progress', not {status!r}"
        raise ValueError(msg) from None
