"""On-disk names of sharded checkpoints (documented in docs/ckptkit/distributed.md).

A sharded checkpoint is a folder holding one index file (``ckptkit-sharded.json``,
the global metadata, written last) and one shard file per rank that wrote
tensors (``shard-00003.ckpt``, an ordinary ckptkit file). While it is written the
folder lives under a staging name; a committed checkpoint that is being replaced
is moved aside under another. Neither name is ever taken for a checkpoint.

The names live here, below ``ckptkit.distributed`` (which writes and reads these
folders), because discovery, validation and ``cleanup`` must recognise a sharded
folder without importing torch or the distributed package.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from ckptkit._file import fs

if TYPE_CHECKING:
    from pathlib import Path

#: The global metadata of a sharded checkpoint; its presence makes a folder one.
INDEX_FILENAME: Final = "ckptkit-sharded.json"
#: Value of the index's ``ckptkit.format`` key.
INDEX_FORMAT: Final = "ckptkit-sharded"
#: Index format understood by this release; a reader refuses a higher one.
INDEX_FORMAT_VERSION: Final = 1
#: Schema written into every shard file's own header.
SHARD_SCHEMA: Final = "ckptkit.shard"
#: Key of a shard file's metadata that ties it to one save.
SHARD_METADATA_KEY: Final = "ckptkit.shard"

#: Writers stage a checkpoint in ``.{name}.{12 hex}.{pid}.ckptkit-staging`` (the
#: coordinator's pid).
STAGING_SUFFIX: Final = ".ckptkit-staging"
#: A committed checkpoint being replaced waits in ``.{name}.{hex}.{pid}.ckptkit-old``.
ASIDE_SUFFIX: Final = ".ckptkit-old"
#: A sharded checkpoint being deleted is renamed ``.{name}.{hex}.{pid}.ckptkit-trash``
#: first, so that it disappears at once and no half-deleted folder is ever read.
TRASH_SUFFIX: Final = ".ckptkit-trash"
_WORK_PATTERN = re.compile(
    r"^\.(?P<target>.+)\.(?P<token>[0-9a-f]{12})\.(?P<pid>\d+)"
    r"(?P<suffix>\.ckptkit-staging|\.ckptkit-old|\.ckptkit-trash)$"
)

#: A sharded ``CheckpointManager`` step: ``step-000000000123`` (a folder).
STEP_DIR_PREFIX: Final = "step-"
STEP_DIR_DIGITS: Final = 12
_STEP_DIR_PATTERN = re.compile(r"^step-(?P<step>[0-9]{12,})$")


def shard_name(rank: int) -> str:
    """File name of the shard written by ``rank`` (``shard-00003.ckpt``)."""
    return f"shard-{rank:05d}.ckpt"


def staging_name(target_name: str, token: str, pid: int) -> str:
    """Name of the folder a new checkpoint for ``target_name`` is written in."""
    return f".{target_name}.{token}.{pid}{STAGING_SUFFIX}"


def aside_name(target_name: str, token: str, pid: int) -> str:
    """Name an old checkpoint at ``target_name`` takes while it is replaced."""
    return f".{target_name}.{token}.{pid}{ASIDE_SUFFIX}"


def trash_name(target_name: str, token: str, pid: int) -> str:
    """Name a sharded checkpoint takes while it is deleted."""
    return f".{target_name}.{token}.{pid}{TRASH_SUFFIX}"


def parse_work_name(name: str) -> tuple[str, int, str] | None:
    """``(target name, pid, suffix)`` of a staging or aside name, else None."""
    match = _WORK_PATTERN.match(name)
    if match is None:
        return None
    return match["target"], int(match["pid"]), match["suffix"]


def is_work_name(name: str) -> bool:
    """Whether ``name`` is a staging, aside or trash folder (never a checkpoint)."""
    return _WORK_PATTERN.match(name) is not None


def is_sharded_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a committed sharded checkpoint folder (no content check)."""
    return (
        not is_work_name(path.name)
        and fs.is_dir(path)
        and fs.lexists(path / INDEX_FILENAME)
    )


def may_be_sharded(path: Path) -> bool:
    """Whether ``path`` is for ``ckptkit.distributed`` to look at, not a file reader.

    A folder may be a sharded checkpoint; a missing path may be one that an
    interrupted sharded save moved aside (the error then says how to restore it).
    """
    return fs.is_dir(path) or not fs.exists(path)


def step_dir_name(step: int) -> str:
    """Folder name of a sharded ``CheckpointManager`` step."""
    if step < 0:
        msg = f"step must be >= 0, not {step}"
        raise ValueError(msg)
    return f"{STEP_DIR_PREFIX}{step:0{STEP_DIR_DIGITS}d}"


def parse_step_dir_name(name: str) -> int | None:
    """The step of a folder named by :func:`step_dir_name`, else None."""
    match = _STEP_DIR_PATTERN.match(name)
    if match is None:
        return None
    step = int(match["step"])
    return step if step_dir_name(step) == name else None
