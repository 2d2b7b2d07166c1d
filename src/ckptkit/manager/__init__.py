"""``CheckpointManager``: numbered checkpoints of a training run, kept and restored.

The package holds the manager (``_manager``), its view of a step folder
(``_steps``), the retention rule (``_retention``), the host-memory snapshot of an
asynchronous save (``_snapshot``) and the thread that writes it (``_background``).
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

from ckptkit.manager._manager import CheckpointFallbackWarning, CheckpointManager

__all__ = ["CheckpointFallbackWarning", "CheckpointManager"]
