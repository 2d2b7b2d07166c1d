"""``ckptkit.distributed.StorageReader``: DCP's read interface over ckptkit files.

``read_metadata`` turns the index (JSON, checksummed) into DCP's ``Metadata``;
DCP's planners then decide, per rank, which pieces of which stored chunks each
local tensor needs (resharding). ``read_data`` reads every needed chunk whole,
checks its xxh3, and only then copies the wanted box into the caller's tensor.
Nothing is unpickled: non-tensor values come from the index's JSON tree.

For plain DCP planners the tree is also offered the way ``DefaultLoadPlanner``
flattens a state (dotted keys, values as "bytes" items), so ``dcp.load`` with this
reader fills the same state ``ckd.load`` would, within DCP's own rules (tuples
come back as lists, dict keys as strings).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed._shard._utils import narrow_tensor_by_index
from torch.distributed.checkpoint._nested_dict import flatten_state_dict
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import (
    BytesStorageMetadata,
    ChunkStorageMetadata,
    Metadata,
    MetadataIndex,
    StorageMeta,
    TensorProperties,
    TensorStorageMetadata,
)
from torch.distributed.checkpoint.planner import LoadItemType, LoadPlan, LoadPlanner
from torch.distributed.checkpoint.storage import StorageReader as _DcpStorageReader
from torch.futures import Future

from ckptkit._file.tree_v1 import decode_tree
from ckptkit.distributed._chunks import empty_tensor, torch_dtype
from ckptkit.distributed._errors import portable
from ckptkit.distributed._sources import Source, open_source
from ckptkit.errors import CheckpointCorruptError, CheckpointError

if TYPE_CHECKING:
    import os

    from torch.distributed.checkpoint.planner import ReadItem

    from ckptkit.distributed._index import ChunkRecord, Index
    from ckptkit.types import PathLike

_Location = tuple[str, "ChunkRecord"]


def meta_state(index: Index) -> tuple[Any, dict[str, torch.Tensor]]:
    """The state of ``index`` with a meta tensor (no data) at each tensor leaf.

    Each has the stored shape and dtype; the second item maps stored keys to them.
    """
    metas = {key: empty_tensor(record, "meta") for key, record in index.tensors.items()}
    state = decode_tree(index.tree, lambda _kind, n: metas[index.leaves[n]["key"]])
    return state, metas


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_tensor(v) for v in value)
    return False


class _Catalogue:
    """DCP's view of an index: metadata, chunk locations, values by flat key."""

    def __init__(self, index: Index) -> None:
        self.entries: dict[str, Any] = {}
        self.locations: dict[MetadataIndex, _Location] = {}
        self.values: dict[str, Any] = {}
        for key in index.tensors:
            self._add_tensor(key, key, index)
        self._add_flattened(index)

    def _add_tensor(self, name: str, key: str, index: Index) -> None:
        record = index.tensors[key]
        self.entries[name] = TensorStorageMetadata(
            properties=TensorProperties(dtype=torch_dtype(record.dtype)),
            size=torch.Size(record.shape),
            chunks=[
                ChunkStorageMetadata(torch.Size(c.offsets), torch.Size(c.sizes))
                for c in record.chunks
            ],
        )
        for chunk in record.chunks:
            self.locations[MetadataIndex(name, chunk.offsets)] = (key, chunk)

    def _add_flattened(self, index: Index) -> None:
        """Offer the state as ``DefaultLoadPlanner`` flattens it (for ``dcp.load``)."""
        state, metas = meta_state(index)
        if not isinstance(state, dict):
            return
        key_of = {id(tensor): key for key, tensor in metas.items()}
        try:
            flat, _ = flatten_state_dict(state)
        except ValueError:  # two paths flatten to one key: only ckd.load reads it
            return
        for fqn, value in flat.items():
            if fqn in self.entries:
                continue
            if isinstance(value, torch.Tensor) and id(value) in key_of:
                self._add_tensor(fqn, key_of[id(value)], index)
            elif not _has_tensor(value):
                self.entries[fqn] = BytesStorageMetadata()
                self.values[fqn] = value


class StorageReader(_DcpStorageReader):
    """A DCP ``StorageReader`` for ckptkit checkpoints (sharded folders or files).

    For callers of ``torch.distributed.checkpoint.load``; ``ckd.load`` uses it
    for you. Every chunk a rank reads is checked against its xxh3 before any of
    its bytes reach the state.

    Args:
        path: A sharded checkpoint folder, or a single ckptkit file.
        verify: ``"full"`` checks every chunk read; ``"quick"`` checks headers
            and sizes only.

    Example:
        >>> import torch, tempfile, pathlib, warnings
        >>> import torch.distributed.checkpoint as dcp
        >>> import ckptkit.distributed as ckd
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "ckpt"
        >>> _ = ckd.save(target, {"w": torch.arange(3.0), "step": 7})
        >>> state = {"w": torch.zeros(3), "step": 0}
        >>> with warnings.catch_warnings():  # DCP warns: no process group
        ...     warnings.simplefilter("ignore")
        ...     dcp.load(state, storage_reader=ckd.StorageReader(target))
        >>> state["w"].tolist(), state["step"]
        ([0.0, 1.0, 2.0], 7)
    """

    def __init__(self, path: PathLike, *, verify: str = "full") -> None:
        super().__init__()
        if verify not in ("quick", "full"):
            msg = f"verify must be 'quick' or 'full', not {verify!r}"
            raise ValueError(msg)
        self.path = Path(path)
        self.verify = verify == "full"
        self._source: Source | None = None
        self.error: CheckpointError | None = None
        self._catalogue: _Catalogue | None = None

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        """Start a new load (DCP calls this first), optionally from another path."""
        if checkpoint_id:
            self.path = Path(checkpoint_id)
        self._source, self.error, self._catalogue = None, None, None

    def source(self) -> Source:
        """Read (once) and return the index; a failure is kept and re-raised.

        Raises:
            CheckpointError: The checkpoint is missing, damaged or too new.
        """
        if self.error is not None:
            raise self.error
        if self._source is None:
            try:
                self._source = open_source(self.path)
            except CheckpointError as error:
                self.error = error
                raise
        return self._source

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        """DCP's metadata for the checkpoint.

        DCP turns an exception here into a bare ``AssertionError``: a failure
        is kept instead, and raised (as itself) by ``set_up_storage_reader``.
        """
        del args
        if kwargs.get("rank") is not None:
            msg = "ckptkit checkpoints have one global index, no rank-local metadata"
            raise FileNotFoundError(msg)
        try:
            source = self.source()
        except CheckpointError:
            return Metadata(state_dict_metadata={})
        if self._catalogue is None:
            self._catalogue = _Catalogue(source.index)
        return Metadata(
            state_dict_metadata=dict(self._catalogue.entries),
            storage_meta=StorageMeta(checkpoint_id=self.path),
        )

    @portable
    def set_up_storage_reader(
        self,
        metadata: Metadata,
        is_coordinator: bool,  # noqa: FBT001 - DCP's signature
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Raise the index's error, if reading it failed (on every rank)."""
        del metadata, is_coordinator, args, kwargs
        self.source()

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        """No storage-specific planning."""
        return plan

    def prepare_global_plan(self, plans: list[LoadPlan]) -> list[LoadPlan]:
        """No storage-specific planning."""
        return plans

    @portable
    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future[None]:
        """Read this rank's items, each stored chunk whole and verified first."""
        source = self.source()
        catalogue = self._catalogue
        if catalogue is None:  # pragma: no cover - DCP reads metadata first
            msg = "read_data() before read_metadata()"
            raise RuntimeError(msg)
        by_chunk: dict[tuple[int, str, str], list[ReadItem]] = defaultdict(list)
        values: list[ReadItem] = []
        for item in plan.items:
            if item.type == LoadItemType.BYTE_IO:
                values.append(item)
                continue
            key, chunk = catalogue.locations[item.storage_index]
            by_chunk[chunk.rank, chunk.entry, key].append(item)
        with source.open_chunks(verify=self.verify) as chunks:
            for rank, entry, key in sorted(by_chunk):
                items = by_chunk[rank, entry, key]
                _, chunk = catalogue.locations[items[0].storage_index]
                data = chunks.read_chunk(key, chunk)
                for item in items:
                    _copy_item(source, planner, item, data)
        for item in values:
            _set_value(
                planner,
                item.dest_index.fqn,
                copy.deepcopy(catalogue.values[item.storage_index.fqn]),
            )
        future: Future[None] = Future()
        future.set_result(None)
        return future

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        """Any local path (no URL) may hold a checkpoint."""
        return "://" not in str(checkpoint_id)


def _copy_item(
    source: Source, planner: LoadPlanner, item: ReadItem, data: torch.Tensor
) -> None:
    piece = narrow_tensor_by_index(data, item.storage_offsets, item.lengths)
    target = planner.resolve_tensor(item).detach()
    if target.size() != piece.size():
        reason = (
            f"chunk of {item.storage_index.fqn!r} does not fit its place in the index"
        )
        raise CheckpointCorruptError(source.path, reason)
    target.copy_(piece)
    planner.commit_tensor(item, target)


def _set_value(planner: LoadPlanner, fqn: str, value: Any) -> None:
    """What ``DefaultLoadPlanner.load_bytes`` does, without ``torch.load``."""
    if not isinstance(planner, DefaultLoadPlanner):
        msg = (
            f"{fqn!r}: {type(planner).__name__} would unpickle this value; "
            "ckptkit's reader fills values for DefaultLoadPlanner (or ckd.load) only"
        )
        raise TypeError(msg)
    if planner.flatten_state_dict:
        set_element(planner.original_state_dict, planner.mappings[fqn], value)
    else:
        planner.state_dict[fqn] = value
