"""``ckptkit.distributed.StorageWriter``: DCP's storage interface, ckptkit's files.

DCP calls, in order (``torch.distributed.checkpoint.storage.StorageWriter``):
``prepare_local_plan`` on every rank, ``prepare_global_plan`` on the coordinator
(here: check the target, create the staging folder, give every rank its place),
``write_data`` on every rank (one shard file per rank, a ckptkit file written by
ckptkit's own writer: fsynced, per-tensor xxh3), then ``finish`` on the
coordinator with every rank's results, only if every rank succeeded (here: write
the index, commit the folder). Non-tensor values that a plain DCP planner sends
as pickled bytes are never pickled: they are read from the planner's state and
stored as ckptkit JSON nodes in the index.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.checkpoint.default_planner import DefaultSavePlanner
from torch.distributed.checkpoint.metadata import (
    Metadata,
    StorageMeta,
    TensorStorageMetadata,
)
from torch.distributed.checkpoint.planner import SavePlan, SavePlanner, WriteItemType
from torch.distributed.checkpoint.storage import StorageWriter as _DcpStorageWriter
from torch.distributed.checkpoint.storage import WriteResult
from torch.futures import Future

from ckptkit._file import fs, values
from ckptkit._file.codec import Encoded, Entry
from ckptkit._file.format import CHECKPOINT_VERSION, utc_now_iso
from ckptkit._file.sharded import (
    SHARD_METADATA_KEY,
    SHARD_SCHEMA,
    shard_name,
    staging_name,
)
from ckptkit._file.skeleton import pack_skeleton
from ckptkit._file.versions import library_version
from ckptkit._file.writer import (
    HeaderFields,
    check_metadata,
    checked_status,
    write_encoded,
)
from ckptkit.distributed._commit import check_target, commit
from ckptkit.distributed._errors import portable
from ckptkit.distributed._index import (
    ChunkRecord,
    Index,
    TensorRecord,
    index_problem,
    write_index,
)
from ckptkit.distributed._info import ShardInfo
from ckptkit.distributed._tree import SavedTree, split_state, synthesize_tree
from ckptkit.errors import SerializationError

if TYPE_CHECKING:
    from torch.distributed.checkpoint.planner import WriteItem

    from ckptkit.types import PathLike


@dataclass(frozen=True)
class _RankPlan:
    """What the coordinator tells each rank (``SavePlan.storage_data``)."""

    staging: str
    rank: int
    save_id: str


@dataclass(frozen=True)
class _ChunkRef:
    """Where a rank stored one chunk (``WriteResult.storage_data``)."""

    rank: int
    entry: str
    shard_size: int


@dataclass(frozen=True)
class _ValueRef:
    """A non-tensor value, encoded as a ckptkit JSON node."""

    node: Any


@dataclass(frozen=True)
class CommittedIndex:
    """What ``finish`` leaves in ``Metadata.storage_data``: the committed index."""

    index: Index


def _entry(item: WriteItem, data: torch.Tensor) -> tuple[Entry, dict[str, Any]]:
    offsets = item.index.offset or ()
    name = f"{item.index.fqn}@{','.join(str(n) for n in offsets)}"
    source = data.detach().resolve_conj().resolve_neg()
    leaf: dict[str, Any] = {"kind": "tensor", "entry": name}
    if source.dtype is torch.complex128:
        source = torch.view_as_real(source)
        leaf["complex128"] = True
    dtype = str(source.dtype).removeprefix("torch.")
    return Entry(name, source, dtype, list(source.shape)), leaf


def _value_node(planner: SavePlanner, item: WriteItem) -> Any:
    if not isinstance(planner, DefaultSavePlanner):
        msg = (
            f"{item.index.fqn!r} is a non-tensor value and {type(planner).__name__} "
            "would pickle it; ckptkit stores values from DefaultSavePlanner (or "
            "ckd.save) only"
        )
        raise SerializationError(msg)
    value = planner.lookup_object(item.index)
    tree, tensors = split_state(value)
    if tensors:
        msg = (
            f"{item.index.fqn!r} holds tensors inside a value DCP treats as one "
            "object (a tuple of tensors?); use ckd.save, or hold them in a list or dict"
        )
        raise SerializationError(msg)
    return tree.tree


class StorageWriter(_DcpStorageWriter):
    """A DCP ``StorageWriter`` that writes a ckptkit sharded checkpoint folder.

    For callers of ``torch.distributed.checkpoint.save`` who pick their own
    planner; ``ckptkit.distributed.save`` uses it for you. Every rank passes a
    writer built with the same arguments.

    Args:
        path: The checkpoint folder (created; an existing sharded checkpoint
            there is replaced atomically once the new one is complete).
        version: Version of the state's format (a semantic version).
        schema: Name of the state's format (for migrations), or None.
        status: ``"complete"`` or ``"in_progress"``.
        metadata: JSON-able dict stored in the index.

    Raises:
        ValueError: An invalid version or status.
        SerializationError: ``metadata`` is not plain JSON.

    Example:
        >>> import torch, tempfile, pathlib, warnings
        >>> import torch.distributed.checkpoint as dcp
        >>> import ckptkit, ckptkit.distributed as ckd
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "ckpt"
        >>> with warnings.catch_warnings():  # DCP warns: no process group
        ...     warnings.simplefilter("ignore")
        ...     writer = ckd.StorageWriter(target)
        ...     _ = dcp.save({"w": torch.ones(2)}, storage_writer=writer)
        >>> ckptkit.load(target).state["w"].tolist()
        [1.0, 1.0]
    """

    def __init__(
        self,
        path: PathLike,
        *,
        version: str = CHECKPOINT_VERSION,
        schema: str | None = None,
        status: str = "complete",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.version, self.schema = version, schema
        self.status = checked_status(version, status)
        self.metadata = check_metadata(metadata)
        self.staging: Path | None = None
        self.is_coordinator = True
        self._token = secrets.token_hex(6)
        self._created_at = ""
        self._save_id = ""

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        """Start a new save (DCP calls this first), optionally to another path."""
        if checkpoint_id:
            self.path = Path(checkpoint_id)
        self.staging = None
        self._token = secrets.token_hex(6)

    def set_up_storage_writer(
        self,
        is_coordinator: bool,  # noqa: FBT001 - DCP's signature
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Record this rank's role (called by DCP on every rank)."""
        del args
        if not kwargs.get("use_collectives", True):
            msg = (
                "ckptkit's StorageWriter needs use_collectives=True (one global index)"
            )
            raise ValueError(msg)
        self.is_coordinator = is_coordinator

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        """Nothing to add on each rank: the coordinator assigns places."""
        return plan

    @portable
    def prepare_global_plan(self, plans: list[SavePlan]) -> list[SavePlan]:
        """Check the target, create the staging folder, tell every rank its place."""
        check_target(self.path)
        fs.mkdir(self.path.parent)
        name = staging_name(self.path.name, self._token, os.getpid())
        self.staging = self.path.parent / name
        fs.mkdir(self.staging)
        self._created_at = utc_now_iso()
        self._save_id = uuid.uuid4().hex
        return [
            replace(plan, storage_data=_RankPlan(name, rank, self._save_id))
            for rank, plan in enumerate(plans)
        ]

    @portable
    def write_data(
        self, plan: SavePlan, planner: SavePlanner
    ) -> Future[list[WriteResult]]:
        """Write this rank's chunks to its shard file (fsynced) when staging."""
        where: _RankPlan = plan.storage_data
        staging = self.path.parent / where.staging
        fs.mkdir(staging)  # another host may not see the coordinator's yet
        results: list[WriteResult] = []
        entries: list[tuple[WriteItem, Entry, dict[str, Any]]] = []
        for item in plan.items:
            if item.type == WriteItemType.BYTE_IO:
                node = _value_node(planner, item)
                results.append(WriteResult(item.index, 0, _ValueRef(node)))
                continue
            data = planner.resolve_data(item)
            if not isinstance(data, torch.Tensor):  # pragma: no cover - DCP contract
                msg = f"{item.index.fqn!r}: a tensor item resolved to {type(data)}"
                raise TypeError(msg)
            entry, leaf = _entry(item, data)
            entries.append((item, entry, leaf))
        if entries:
            results.extend(self._write_shard(staging, where, entries))
        future: Future[list[WriteResult]] = Future()
        future.set_result(results)
        return future

    def _write_shard(
        self,
        staging: Path,
        where: _RankPlan,
        entries: list[tuple[WriteItem, Entry, dict[str, Any]]],
    ) -> list[WriteResult]:
        # A shard is an ordinary format-2 file: its state maps each chunk's entry
        # name to its tensor (``ckptkit.load`` of a shard file works as usual).
        leaf = values.MARKS[values.Tag.LEAF]
        skeleton = {e.name: [leaf, i] for i, (_, e, _) in enumerate(entries)}
        encoded = Encoded(
            tree=pack_skeleton(skeleton, {}),
            leaves=[leaf for _, _, leaf in entries],
            entries=[entry for _, entry, _ in entries],
        )
        stamp = {SHARD_METADATA_KEY: {"save_id": where.save_id, "rank": where.rank}}
        fields = HeaderFields(CHECKPOINT_VERSION, SHARD_SCHEMA, "complete", stamp)
        info = write_encoded(staging / shard_name(where.rank), encoded, fields)
        return [
            WriteResult(
                item.index,
                entry.nbytes,
                _ChunkRef(where.rank, entry.name, info.file_size),
            )
            for item, entry, _ in entries
        ]

    @portable
    def finish(self, metadata: Metadata, results: list[list[WriteResult]]) -> None:
        """Write the index into the staging folder and commit it (coordinator)."""
        if self.staging is None:  # pragma: no cover - prepare_global_plan ran first
            msg = "finish() before prepare_global_plan()"
            raise RuntimeError(msg)
        index = self._index(metadata, results)
        problem = index_problem(index)
        if problem is not None:  # pragma: no cover - a planner that lost chunks
            msg = f"internal error: the index would be inconsistent: {problem}"
            raise RuntimeError(msg)
        write_index(self.staging, index)
        commit(self.staging, self.path, self._token)
        self.staging = None
        metadata.storage_data = CommittedIndex(index)
        metadata.storage_meta = self.storage_meta()

    def _index(self, metadata: Metadata, results: list[list[WriteResult]]) -> Index:
        chunks: dict[tuple[str, tuple[int, ...]], _ChunkRef] = {}
        values: dict[str, Any] = {}
        for result in (r for per_rank in results for r in per_rank):
            ref = result.storage_data
            if isinstance(ref, _ValueRef):
                values[result.index.fqn] = ref.node
            else:
                chunks[result.index.fqn, tuple(result.index.offset or ())] = ref
        tensors = {
            fqn: TensorRecord(
                str(md.properties.dtype).removeprefix("torch."),
                tuple(md.size),
                tuple(
                    ChunkRecord(
                        tuple(c.offsets),
                        tuple(c.sizes),
                        chunks[fqn, tuple(c.offsets)].rank,
                        chunks[fqn, tuple(c.offsets)].entry,
                    )
                    for c in md.chunks
                ),
            )
            for fqn, md in metadata.state_dict_metadata.items()
            if isinstance(md, TensorStorageMetadata)
        }
        tree = metadata.planner_data
        if not isinstance(tree, SavedTree):  # a plain DCP planner: rebuild its nesting
            mappings = tree if isinstance(tree, dict) else {}
            tree = synthesize_tree(mappings, set(tensors), values)
        shards = {ref.rank: ref.shard_size for ref in chunks.values()}
        return Index(
            version=self.version,
            schema=self.schema,
            status=self.status,
            created_at=self._created_at,
            metadata=self.metadata,
            save_id=self._save_id,
            world_size=len(results),
            tree=tree.tree,
            leaves=tuple(tree.leaves),
            tensors=tensors,
            shards=tuple(
                ShardInfo(shard_name(r), r, s) for r, s in sorted(shards.items())
            ),
            writer={
                "library": "ckptkit",
                "version": library_version(),
                "torch": torch.__version__,
            },
        )

    def storage_meta(self) -> StorageMeta | None:
        """DCP's storage metadata: the checkpoint path."""
        return StorageMeta(checkpoint_id=self.path)

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        """Any local path (no URL) can take a checkpoint."""
        return "://" not in str(checkpoint_id)
