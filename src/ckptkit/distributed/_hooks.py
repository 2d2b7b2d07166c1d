"""Where ckptkit's single-process functions hand over to sharded checkpoints.

``ckptkit.load``, ``inspect`` and ``validate`` call these with a path that is a
folder, or that does not exist: each returns None when the path is no sharded
checkpoint (the caller then goes on as before), else does the job. A missing
path next to a staging or aside folder that ``ckptkit cleanup`` would restore is
reported as such. The checks are torch-free; reading imports torch.distributed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ckptkit._file.sharded import is_sharded_checkpoint
from ckptkit.distributed._commit import refuse_pending

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from ckptkit._file.reader import ReadRequest
    from ckptkit.info import Checkpoint, CheckpointInfo


def _applies(path: Path) -> bool:
    if is_sharded_checkpoint(path):
        return True
    refuse_pending(path)
    return False


def load_folder(path: Path, request: ReadRequest) -> Checkpoint | None:
    """``ckptkit.load`` of a sharded folder: the whole state, in this process."""
    if not _applies(path):
        return None
    if request.use_mmap:
        msg = f"{path}: mmap=True maps single files only; load this folder without it"
        raise ValueError(msg)
    from ckptkit.distributed._api import load_whole
    from ckptkit.info import Checkpoint

    keys = None if request.keys is None else list(request.keys)
    checkpoint = load_whole(
        path, verify="full" if request.verify else "quick", keys=keys
    )
    if request.device.type == "cpu" and request.dtype is None:
        return checkpoint
    from ckptkit.distributed._local import move_tensors

    state = move_tensors(checkpoint.state, request.device, request.dtype)
    return Checkpoint(state, checkpoint.info)


def inspect_folder(path: Path) -> CheckpointInfo | None:
    """``ckptkit.inspect`` of a sharded folder: the global view from its index."""
    if not _applies(path):
        return None
    from ckptkit.distributed._index import info_from_index, read_index

    return info_from_index(path, read_index(path))


def validate_folder(
    path: Path, level: str, required_keys: Sequence[tuple[Any, ...]]
) -> tuple[bool, CheckpointInfo | None, list[str]]:
    """``ckptkit.validate`` of a sharded folder; ``(False, None, [])`` if it is none.

    Else ``True``, its information, and the required keys (dotted) its state lacks.

    Raises:
        CheckpointError: What is wrong (the reason names the shard file).
    """
    if not _applies(path):
        return False, None, []
    from ckptkit.distributed._local import validate_sharded

    info, missing = validate_sharded(path, level, required_keys)
    return True, info, missing
