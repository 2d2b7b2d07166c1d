"""Sharded checkpoints for FSDP and DTensor training, on torch.distributed.checkpoint.

``import ckptkit.distributed as ckd``. Every rank of a process group calls
``ckd.save``/``ckd.load`` (collectives, like ``dcp.save``/``dcp.load``); each
writes its own shard file, a checkpoint saved on N ranks loads on any M, and
ckptkit's promises hold: no pickle on disk, a checksum on every tensor chunk,
an atomic commit of the whole folder, one error on every rank. ``ckptkit.load``,
``ckptkit.inspect`` and ``ckptkit.validate`` read sharded folders from one
process. docs/ckptkit/distributed.md is the guide.

Names are loaded on first use (PEP 562): the modules behind them import
``torch.distributed``, while discovery and ``cleanup`` only need the folder
layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptkit._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
    from ckptkit.distributed._api import consolidate, load, save
    from ckptkit.distributed._errors import RankFailedError
    from ckptkit.distributed._info import ShardedCheckpointInfo, ShardInfo
    from ckptkit.distributed._storage_reader import StorageReader
    from ckptkit.distributed._storage_writer import StorageWriter

_LAZY = {
    "consolidate": "ckptkit.distributed._api",
    "load": "ckptkit.distributed._api",
    "save": "ckptkit.distributed._api",
    "RankFailedError": "ckptkit.distributed._errors",
    "ShardInfo": "ckptkit.distributed._info",
    "ShardedCheckpointInfo": "ckptkit.distributed._info",
    "StorageReader": "ckptkit.distributed._storage_reader",
    "StorageWriter": "ckptkit.distributed._storage_writer",
}


__getattr__, __dir__ = _lazy_names("ckptkit.distributed", _LAZY, globals())


__all__ = [
    "RankFailedError",
    "ShardInfo",
    "ShardedCheckpointInfo",
    "StorageReader",
    "StorageWriter",
    "consolidate",
    "load",
    "save",
]
