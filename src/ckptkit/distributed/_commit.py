"""Commit a staged sharded checkpoint, and recover from a crash at any step.

The commit (docs/ckptkit/distributed.md, "Commit protocol") runs on the coordinator once
every rank has written and fsynced its shard and the index is durable in the
staging folder. POSIX ``rename`` cannot replace a folder that has files in it,
so an existing checkpoint is first moved aside:

1. ``path`` -> ``.{name}.{token}.{pid}.ckptkit-old``   (only if ``path`` exists)
2. staging -> ``path``; fsync the parent folder
3. remove the aside folder; fsync the parent folder

What a crash leaves, and what :func:`recover` (``ckptkit cleanup``, a sharded
``CheckpointManager``) makes of it once the writer is dead:

====================================  ==========================================
left on disk                          recovery
====================================  ==========================================
``path`` + staging (any state)        staging removed
no ``path`` + complete staging        staging renamed to ``path`` (new one)
no ``path`` + aside, no complete      aside renamed back to ``path`` (old one)
staging
``path`` + aside                      aside removed
a trash folder (a deletion)           removed
====================================  ==========================================

A staging folder is complete when its index is intact and lists shard files of
the recorded sizes: the index is written only after every rank succeeded.
"""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ckptkit._file import fs
from ckptkit._file.atomic import is_process_alive
from ckptkit._file.sharded import (
    ASIDE_SUFFIX,
    STAGING_SUFFIX,
    aside_name,
    is_sharded_checkpoint,
    parse_work_name,
    trash_name,
)
from ckptkit.distributed._index import file_size, read_index
from ckptkit.errors import CheckpointError, CheckpointNotFoundError

if TYPE_CHECKING:
    from pathlib import Path


def check_target(path: Path) -> None:
    """Refuse a ``path`` a sharded save must not replace (before anything is written).

    Raises:
        FileExistsError: ``path`` is a file, or a folder that is not a sharded
            checkpoint and not empty (never deleted: it may hold anything).
    """
    if not fs.lexists(path):
        return
    if fs.is_dir(path) and (is_sharded_checkpoint(path) or not fs.list_names(path)):
        return
    what = "a folder that is not a sharded checkpoint" if fs.is_dir(path) else "a file"
    raise FileExistsError(
        errno.EEXIST,
        f"{path} exists and is {what}; remove it or save to another path",
        str(path),
    )


def commit(staging: Path, path: Path, token: str) -> None:
    """Make the complete ``staging`` folder the checkpoint at ``path``, durably."""
    parent = path.parent
    fs.fsync_directory(staging)
    if not fs.lexists(path):
        fs.replace(staging, path)
        fs.fsync_directory(parent)
        return
    aside = parent / aside_name(path.name, token, os.getpid())
    fs.replace(path, aside)
    fs.replace(staging, path)
    fs.fsync_directory(parent)
    fs.remove_tree(aside)
    fs.fsync_directory(parent)


@dataclass(frozen=True)
class RecoveryAction:
    """What :func:`recover` did (or would do) with one staging or aside folder.

    ``action`` is ``"removed"``, ``"restored"`` (renamed to ``target``, the
    checkpoint path it belongs to) or ``"kept"`` (its writer is still running).
    """

    action: Literal["removed", "restored", "kept"]
    path: Path
    target: Path


def _is_complete(staging: Path) -> bool:
    try:
        index = read_index(staging)
    except (CheckpointError, OSError):
        return False
    return all(file_size(staging / shard.file) == shard.size for shard in index.shards)


def recover(directory: Path, *, dry_run: bool = False) -> list[RecoveryAction]:
    """Finish or undo the sharded saves in ``directory`` whose writer is dead.

    Returns one action per staging or aside folder found, stagings first
    (``dry_run``: what would be done, doing nothing).
    """
    work: list[tuple[str, Path, Path, int]] = []
    for name in fs.list_names(directory):
        parsed = parse_work_name(name)
        if parsed is not None and fs.is_dir(directory / name):
            target_name, writer_pid, kind = parsed
            work.append((kind, directory / name, directory / target_name, writer_pid))
    actions: list[RecoveryAction] = []
    present = {target for _, _, target, _ in work if fs.lexists(target)}
    stagings = [w for w in work if w[0] == STAGING_SUFFIX]  # trash: always removed
    complete = sorted(
        (w for w in stagings if w[2] not in present and _is_complete(w[1])),
        key=lambda w: read_index(w[1]).created_at,
        reverse=True,  # the newest complete save wins
    )
    promoted: dict[Path, Path] = {}
    for _, folder, target, pid in complete:
        if target not in promoted and not is_process_alive(pid):
            promoted[target] = folder
    for suffix, folder, target, pid in sorted(
        work, key=lambda w: w[0] != STAGING_SUFFIX
    ):
        if is_process_alive(pid):
            actions.append(RecoveryAction("kept", folder, target))
            continue
        restore = (promoted.get(target) == folder) or (
            suffix == ASIDE_SUFFIX and target not in present and target not in promoted
        )
        if restore:
            present.add(target)
            promoted.setdefault(target, folder)
            actions.append(RecoveryAction("restored", folder, target))
            if not dry_run:
                fs.replace(folder, target)
                fs.fsync_directory(directory)
            continue
        actions.append(RecoveryAction("removed", folder, target))
        if not dry_run:
            fs.remove_tree(folder)
    return actions


def delete_checkpoint(path: Path) -> None:
    """Delete a sharded checkpoint folder: renamed away at once, then removed."""
    trash = path.parent / trash_name(path.name, secrets.token_hex(6), os.getpid())
    fs.replace(path, trash)
    fs.fsync_directory(path.parent)
    fs.remove_tree(trash)


def refuse_pending(path: Path) -> None:
    """Raise when a missing ``path`` waits for ``ckptkit cleanup`` to restore it.

    Raises:
        CheckpointNotFoundError: Naming the staging or aside folder to restore.
    """
    if fs.lexists(path) or not fs.is_dir(path.parent):
        return
    for action in recover(path.parent, dry_run=True):
        if action.target == path and action.action != "removed":
            raise CheckpointNotFoundError(
                path,
                "does not exist: a sharded save was interrupted while replacing it; "
                f"`ckptkit cleanup {path.parent}` restores it from {action.path.name}",
            )
