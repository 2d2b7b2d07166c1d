"""What a sharded checkpoint says about itself: ``CheckpointInfo`` plus its shards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckptkit.distributed import _fileops
from ckptkit.distributed._layout import INDEX_FILENAME, INDEX_FORMAT_VERSION
from ckptkit.info import CheckpointInfo, TensorInfo

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit.distributed._index import Index


@dataclass(frozen=True)
class ShardInfo:
    """One shard file of a sharded checkpoint.

    Attributes:
        file: Its name inside the checkpoint folder (``shard-00003.ckpt``).
        rank: The rank that wrote it.
        size: Its size in bytes.
    """

    file: str
    rank: int
    size: int


@dataclass(frozen=True)
class ShardedCheckpointInfo(CheckpointInfo):
    """``CheckpointInfo`` of a sharded checkpoint folder: the global view.

    ``tensors`` lists each tensor once with its global shape; ``file_size`` is the
    folder's total (index and shards); ``format_version`` is the sharded format.

    Attributes:
        world_size: Number of ranks that saved it.
        shards: The shard files (ranks that held no tensor wrote none).
    """

    world_size: int = 1
    shards: tuple[ShardInfo, ...] = ()


def info_from_index(folder: Path, index: Index) -> ShardedCheckpointInfo:
    """The public information of a sharded checkpoint, from its decoded index."""
    index_size = _fileops.file_size(folder / INDEX_FILENAME) or 0
    tensors = tuple(
        TensorInfo(key, record.dtype, record.shape, record.nbytes)
        for key, record in index.tensors.items()
    )
    return ShardedCheckpointInfo(
        path=folder,
        format_version=INDEX_FORMAT_VERSION,
        version=index.version,
        schema=index.schema,
        status=index.status,
        created_at=index.created_at,
        metadata=index.metadata,
        tensor_count=len(tensors),
        nbytes=index.nbytes,
        legacy=False,
        history=index.history,
        tensors=tensors,
        file_size=index_size + sum(shard.size for shard in index.shards),
        world_size=index.world_size,
        shards=tuple(ShardInfo(s.file, s.rank, s.size) for s in index.shards),
    )
