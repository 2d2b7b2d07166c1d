"""``CheckpointManager``: numbered checkpoints of a training run, kept and restored.

The package holds the manager (``_manager``, the public facade) and its parts:
the checks of its options and the settings it keeps (``_options``), and one of
two engines that hold its steps. Single-file steps (``_file_steps.FileSteps``,
which writes, restores and shuts down) use the lock that keeps the manager the
folder's one writer (``_lock``), its view of the step files (``_steps``) and
their index (``_index``), the copy an asynchronous save takes (``_freeze``, into
the host buffer of ``_snapshot``), the thread that writes it (``_background``) and
preemption signal handling (``_preemption``). Sharded managers
(``sharded=True``) keep their steps as ``ckptkit.distributed`` folders through
``_sharded.ShardedSteps`` and ``_sharded_steps`` (only ``_sharded`` imports
torch.distributed). Both share the retention rule (``_retention``) and the
fallback past damaged steps (``_fallback``).
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

from ckptkit.manager._fallback import CheckpointFallbackWarning
from ckptkit.manager._manager import CheckpointManager

__all__ = ["CheckpointFallbackWarning", "CheckpointManager"]
