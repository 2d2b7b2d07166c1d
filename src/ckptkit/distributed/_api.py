"""``save``, ``load`` and ``consolidate``: DCP's collective calls, ckptkit's files.

``save`` and ``load`` are ``torch.distributed.checkpoint.save``/``load`` with
ckptkit's storage writer/reader and planners; every rank of the process group
calls them. Whatever fails on any rank, every rank raises the same error (see
``_errors``). Without an initialised process group they run in one process.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch.distributed as dist
from torch.distributed.checkpoint import state_dict_loader, state_dict_saver
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.stateful import Stateful

from ckptkit._file import fs
from ckptkit._file.format import CHECKPOINT_VERSION
from ckptkit._file.leaf_views import leaf_value
from ckptkit._file.skeleton import LeafRef, leaf_indices, materialize
from ckptkit._file.tree_v1 import decode_tree
from ckptkit._file.writer import HeaderFields, write_checkpoint
from ckptkit.distributed._chunks import empty_tensor
from ckptkit.distributed._errors import RankFailedError, agreed_error, one_line
from ckptkit.distributed._index import info_from_index
from ckptkit.distributed._migrate import MigratedTree
from ckptkit.distributed._planners import ROOT_KEY, LoadPlanner, SavePlanner
from ckptkit.distributed._storage_reader import StorageReader
from ckptkit.distributed._storage_writer import CommittedIndex, StorageWriter
from ckptkit.info import Checkpoint
from ckptkit.keys import select_keys

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ckptkit.distributed._info import ShardedCheckpointInfo
    from ckptkit.info import CheckpointInfo
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import PathLike, StateTree

Verify = Literal["quick", "full"]


def _no_dist() -> bool:
    return not (dist.is_available() and dist.is_initialized())


@contextlib.contextmanager
def _single_process(*, no_dist: bool) -> Iterator[None]:
    """DCP warns on every call without a process group; that is the intent here."""
    with warnings.catch_warnings():
        if no_dist:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _state_dicts(state: StateTree) -> StateTree:
    """``state`` with each top-level ``Stateful`` replaced by its ``state_dict()``."""
    if not isinstance(state, dict):
        return state
    converted = copy.copy(state)  # keeps the dict's type
    for key, value in state.items():
        if isinstance(value, Stateful):
            converted[key] = value.state_dict()
    return converted


def _give_back(state: StateTree, loaded: StateTree) -> None:
    """Hand loaded values to ``state``: ``load_state_dict`` for ``Stateful`` ones."""
    if not isinstance(state, dict) or loaded is state:
        return
    for key, value in state.items():
        if isinstance(value, Stateful):
            value.load_state_dict(loaded[key])
        elif loaded[key] is not value:
            state[key] = loaded[key]


def _discard_staging(writer: StorageWriter) -> None:
    if writer.staging is not None:
        with contextlib.suppress(OSError):  # best effort: `ckptkit cleanup` finishes
            fs.remove_tree(writer.staging)
        writer.staging = None


def save(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    state: StateTree,
    *,
    process_group: dist.ProcessGroup | None = None,
    version: str = CHECKPOINT_VERSION,
    schema: str | None = None,
    status: str = "complete",
    metadata: dict[str, Any] | None = None,
) -> ShardedCheckpointInfo:
    """Save a (sharded) state collectively: every rank of the group calls it.

    Each rank writes the tensors it holds (DTensor shards, and its share of
    replicated tensors) to its own shard file in a staging folder; once every
    rank has succeeded, the coordinator writes the index and renames the folder
    to ``path`` (an old checkpoint there is replaced atomically). Non-tensor
    values are stored in the index as ckptkit's JSON tree: no pickle.

    Args:
        path: The checkpoint folder.
        state: What ``dcp.save`` takes: nested dicts/lists/tuples of DTensors,
            tensors and ckptkit's leaves (ints, floats, strings, numpy arrays,
            RNG states ...); ``Stateful`` objects are saved via ``state_dict()``.
        process_group: The group saving (default: the default group; none
            initialised: this process alone).
        version: Version of the state's format.
        schema: Name of the state's format, or None.
        status: ``"complete"`` or ``"in_progress"``.
        metadata: JSON-able dict stored in the index.

    Returns:
        The committed checkpoint's information (the same on every rank).

    Raises:
        SerializationError: A leaf ckptkit does not store, or a value (or plain
            tensor) that differs between ranks under one key.
        FileExistsError: ``path`` is a file or a folder that is no checkpoint.
        RankFailedError: A rank failed while writing (full disk, a lost rank):
            nothing was committed.

    Example:
        >>> import torch, tempfile, pathlib
        >>> import ckptkit.distributed as ckd
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "step-10"
        >>> ckd.save(target, {"w": torch.ones(4), "step": 10}).world_size
        1
    """
    target = Path(path)
    writer = StorageWriter(
        target, version=version, schema=schema, status=status, metadata=metadata
    )
    no_dist = _no_dist()
    try:
        with _single_process(no_dist=no_dist):
            result = state_dict_saver.save(
                {ROOT_KEY: _state_dicts(state)},
                storage_writer=writer,
                planner=SavePlanner(),
                process_group=process_group,
                no_dist=no_dist,
            )
    except CheckpointException as error:
        _discard_staging(writer)
        raise agreed_error(error.failures, str(target), "save") from None
    except Exception as error:  # a collective failed: a lost rank or a timeout
        _discard_staging(writer)
        raise RankFailedError(
            str(target), {_rank(): one_line(error)}, "save"
        ) from error
    committed = result.storage_data
    if not isinstance(committed, CommittedIndex):  # pragma: no cover - finish ran
        msg = "internal error: the save returned no index"
        raise RuntimeError(msg)  # noqa: TRY004 - a broken invariant, not a bad type
    return info_from_index(target, committed.index)


def _rank() -> int:
    return 0 if _no_dist() else dist.get_rank()


def load(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    state: StateTree,
    *,
    process_group: dist.ProcessGroup | None = None,
    registry: MigrationRegistry | None = None,
    to_version: str | None = None,
    verify: Verify = "full",
) -> Checkpoint:
    """Load a checkpoint into ``state`` in place, on any number of ranks.

    Every tensor of ``state`` (a DTensor's local shard, or a whole tensor) is
    filled from the stored tensor at its path, reading only the stored chunks
    that overlap it, each verified whole before any byte is copied; every other
    value at a path of ``state`` is replaced by the stored one. Works for any
    world size at save and at load, and for a single ckptkit file as well.

    Args:
        path: A sharded checkpoint folder, or a single ckptkit file.
        state: The state to fill (what ``dcp.load`` takes), with tensors of the
            stored shapes and dtypes.
        process_group: The group loading (default: the default group; none
            initialised: this process alone).
        registry: Migrate the stored state to ``to_version`` (default: the
            registry's current) before filling; see docs/ckptkit/distributed.md for
            what a migration can do without tensor data.
        to_version: Target version of the migration.
        verify: ``"full"`` checks every chunk read; ``"quick"`` headers only.

    Returns:
        ``Checkpoint(state=state, info=..., applied=...)``: ``state`` itself.

    Raises:
        CheckpointNotFoundError: No checkpoint at ``path``.
        CheckpointCorruptError: A damaged index or shard (the message names the
            file), on every rank.
        KeyError: ``state`` asks for a path the checkpoint does not hold.
        ValueError: A tensor of another shape or dtype than the stored one.
        MigrationError: With ``registry``: see ``MigrationRegistry.migrate``.
        RankFailedError: Another failure on some rank (a lost rank, I/O errors).

    Example:
        >>> import torch, tempfile, pathlib
        >>> import ckptkit.distributed as ckd
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "step-10"
        >>> _ = ckd.save(target, {"w": torch.ones(4), "step": 10})
        >>> state = {"w": torch.zeros(4), "step": 0}
        >>> checkpoint = ckd.load(target, state)
        >>> checkpoint.info.world_size, state["step"], state["w"].sum().item()
        (1, 10, 4.0)
    """
    target = Path(path)
    reader = StorageReader(target, verify=verify)
    migrated = None if registry is None else MigratedTree(registry, to_version)
    planner = LoadPlanner(reader, migrated)
    no_dist = _no_dist()
    loaded = _state_dicts(state)
    try:
        with _single_process(no_dist=no_dist):
            state_dict_loader.load(
                {ROOT_KEY: loaded},
                storage_reader=reader,
                planner=planner,
                process_group=process_group,
                no_dist=no_dist,
            )
    except CheckpointException as error:
        raise agreed_error(error.failures, str(target), "load") from None
    except Exception as error:  # a collective failed: a lost rank or a timeout
        raise RankFailedError(
            str(target), {_rank(): one_line(error)}, "load"
        ) from error
    # Values are set only now that every rank has read its tensors: a load that
    # failed anywhere changes no value anywhere.
    planner.finish_values()
    _give_back(state, loaded)
    return Checkpoint(state=state, info=reader.source().info, applied=planner.applied)


def load_whole(
    path: Path, *, verify: Verify, keys: list[tuple[Any, ...]] | None = None
) -> Checkpoint:
    """Read a whole sharded checkpoint into this process (``ckptkit.load``'s engine).

    Runs without collectives, whatever process group exists.
    """
    reader = StorageReader(path, verify=verify)
    source = reader.source()
    index = source.index
    structure = decode_tree(index.tree, lambda _kind, number: LeafRef(number))
    if keys is not None:
        structure = select_keys(structure, keys, path)
    numbers: set[int] = set()
    leaf_indices(structure, numbers)
    needed = {index.leaves[number]["key"] for number in numbers}
    targets = {key: empty_tensor(index.tensors[key]) for key in needed}
    try:
        with _single_process(no_dist=True):
            state_dict_loader.load(
                targets,
                storage_reader=reader,
                planner=DefaultLoadPlanner(flatten_state_dict=False),
                no_dist=True,
            )
    except CheckpointException as error:
        raise agreed_error(error.failures, str(path), "load") from None
    if verify == "full" and keys is not None:  # full verification covers everything
        with source.open_chunks(verify=True) as chunks:
            for key in sorted(set(index.tensors) - needed):
                for chunk in index.tensors[key].chunks:
                    chunks.read_chunk(key, chunk)

    def leaf(number: int) -> object:
        kind, key = index.leaves[number]["kind"], index.leaves[number]["key"]
        return leaf_value(kind, targets[key])

    return Checkpoint(state=materialize(structure, leaf), info=source.info)


def consolidate(path: PathLike, output: PathLike) -> CheckpointInfo:
    """Write a sharded checkpoint as one ordinary ckptkit file (one process).

    Every chunk is verified; the file keeps the version, schema, status,
    metadata and migration history, and is written atomically like
    ``ckptkit.save``. The whole state is held in memory once. The inverse is
    ``ckd.load`` of that file into a sharded state.

    Args:
        path: The sharded checkpoint folder.
        output: The file to write.

    Returns:
        The written file's information.

    Raises:
        CheckpointNotFoundError: No sharded checkpoint at ``path``.
        CheckpointCorruptError: A damaged index or shard (the message names it).

    Example:
        >>> import torch, tempfile, pathlib, ckptkit
        >>> import ckptkit.distributed as ckd
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = ckd.save(folder / "sharded", {"w": torch.ones(2)}, schema="demo")
        >>> ckd.consolidate(folder / "sharded", folder / "one.ckpt").schema
        'demo'
        >>> ckptkit.load(folder / "one.ckpt").state["w"].tolist()
        [1.0, 1.0]
    """
    source = Path(path)
    checkpoint = load_whole(source, verify="full")
    info = checkpoint.info
    fields = HeaderFields(
        info.version, info.schema, info.status, info.metadata, info.history
    )
    return write_checkpoint(output, checkpoint.state, fields)
