"""Checks of a sharded checkpoint from one process (``ckptkit.validate``).

Levels as for single files (docs/ckptkit/format.md, section 6): ``exists`` (the index is
there and not empty), ``quick`` (index checksum and structure; every shard file
present, of the recorded size, with an intact header of this save holding every
chunk the index names; the tree decodes), ``full`` (quick plus the xxh3 of
every chunk of every shard). A failure names the shard file in its reason.
"""

from __future__ import annotations

import copy
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.sharded import INDEX_FILENAME
from ckptkit._file.skeleton import LeafRef
from ckptkit._file.tensors import verify_buffer, verify_entry
from ckptkit._file.tree_v1 import decode_tree
from ckptkit.distributed._chunks import ChunkReader, stored_geometry
from ckptkit.distributed._index import file_size, info_from_index, read_index
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointNotFoundError,
    MigrationError,
)
from ckptkit.keys import has_key, key_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ckptkit.distributed._index import Index
    from ckptkit.info import CheckpointInfo


def map_leaves(state: Any, leaf: Callable[[Any], Any]) -> Any:
    """``state`` with dicts, lists and tuples rebuilt, ``leaf`` applied to the rest."""
    if isinstance(state, dict):
        twin = copy.copy(state)  # keeps the type and extras (a state_dict's _metadata)
        for key, value in state.items():
            twin[key] = map_leaves(value, leaf)
        return twin
    if isinstance(state, list):
        return [map_leaves(value, leaf) for value in state]
    if type(state) is tuple:
        return tuple(map_leaves(value, leaf) for value in state)
    return leaf(state)


def move_tensors(
    state: Any, device: torch.device, dtype: torch.dtype | None = None
) -> Any:
    """``state`` with every tensor on ``device`` (floating ones cast to ``dtype``).

    Containers are rebuilt; one tensor held twice (tied weights) stays one tensor.
    """
    moved: dict[int, torch.Tensor] = {}

    def move(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        if id(value) not in moved:
            cast = dtype if value.is_floating_point() else None
            moved[id(value)] = value.to(device=device, dtype=cast)
        return moved[id(value)]

    return map_leaves(state, move)


def _check_shards(folder: Path, index: Index, *, full: bool) -> None:
    with closing(ChunkReader(folder, index, verify=False)) as chunks:
        specs = []
        for record in index.tensors.values():
            for chunk in record.chunks:
                shard = chunks.shard(chunk.rank)
                dtype, shape = stored_geometry(record, chunk.sizes)
                specs.append((shard, shard.entry(chunk.entry, dtype, shape)))
        if not full:
            return
        buffer = verify_buffer()
        for shard, spec in sorted(specs, key=lambda s: (str(s[0].path), s[1].begin)):
            verify_entry(shard.handle, shard.parsed, spec, buffer)


def _located(folder: Path, error: CheckpointError) -> CheckpointError:
    """The error re-addressed to the folder, its reason naming the shard file."""
    if error.path is None or Path(error.path) == folder:
        return error
    name = Path(error.path).name
    if isinstance(error, (CheckpointNotFoundError, MigrationError)):
        return CheckpointCorruptError(folder, f"{name}: {error.reason}")
    return type(error)(folder, f"{name}: {error.reason}")


def _leaf_ref(index: Index, number: int) -> LeafRef:
    index.leaves[number]  # a leaf the index does not hold: a damaged tree
    return LeafRef(number)


def validate_sharded(
    folder: Path, level: str, required_keys: Sequence[tuple[Any, ...]]
) -> tuple[CheckpointInfo | None, list[str]]:
    """Check a sharded checkpoint folder at ``level``.

    Returns its information (None at level ``exists``) and the required keys its
    state lacks (dotted; an intact folder without them is not damaged).

    Raises:
        CheckpointError: The first problem found (reason names the shard file).
    """
    try:
        if level == "exists":
            if not file_size(folder / INDEX_FILENAME):
                raise CheckpointCorruptError(folder, f"{INDEX_FILENAME} is empty")
            return None, []
        index = read_index(folder)
        structure = decode_tree(index.tree, lambda _kind, n: _leaf_ref(index, n))
        _check_shards(folder, index, full=level == "full")
    except CheckpointError as error:
        raise _located(folder, error) from error
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as error:
        reason = f"state tree cannot be rebuilt: {error}".splitlines()[0]
        raise CheckpointCorruptError(folder, reason) from error
    missing = [key_text(key) for key in required_keys if not has_key(structure, key)]
    return info_from_index(folder, index), missing
