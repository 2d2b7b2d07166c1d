"""What a sharded checkpoint says about itself: ``CheckpointInfo`` plus its shards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ckptkit.info import CheckpointInfo


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

    def to_json(self) -> dict[str, str | int]:
        """The shard as plain JSON data."""
        return {"file": self.file, "rank": self.rank, "size": self.size}


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

    def to_json(self) -> dict[str, Any]:
        """The information as plain JSON data (``ckptkit inspect --json``).

        Returns:
            ``CheckpointInfo.to_json()`` with ``format`` ``"ckptkit-sharded"``,
            plus ``world_size`` and ``shards`` (``file``, ``rank``, ``size`` each).
        """
        return {
            **super().to_json(),
            "format": "ckptkit-sharded",
            "world_size": self.world_size,
            "shards": [shard.to_json() for shard in self.shards],
        }
