"""``CheckpointManager``: numbered checkpoints of a training run, kept and restored.

The package holds the manager (``_manager``), its view of a step folder
(``_steps``), the retention rule (``_retention``), the fallback past damaged steps
on restore (``_fallback``), the host-memory snapshot of an asynchronous save
(``_snapshot``) and the thread that writes it (``_background``). Sharded managers
(``sharded=True``) keep their steps as ``ckptkit.distributed`` folders through
``_sharded`` and ``_sharded_steps`` (only ``_sharded`` imports torch.distributed).
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

from ckptkit.manager._fallback import CheckpointFallbackWarning
from ckptkit.manager._manager import CheckpointManager

__all__ = ["CheckpointFallbackWarning", "CheckpointManager"]
