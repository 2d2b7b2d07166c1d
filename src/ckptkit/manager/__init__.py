"""``CheckpointManager``: numbered checkpoints of a training run, kept and restored.

The package holds the manager (``_manager``) and its parts: the checks of its
options (``_options``), the lock that keeps it the folder's one writer
(``_lock``), its view of the step files (``_steps``) and their index
(``_index``), the retention rule (``_retention``), restore with fallback
(``_restore``), the copy an asynchronous save takes (``_freeze``, into the host
buffer of ``_snapshot``), the thread that writes it (``_background``), the
writing of one step and the shut-down (``_writing``),
preemption signal handling (``_preemption``), and the fallback past damaged
steps that single-file and sharded managers share (``_fallback``). Sharded
managers (``sharded=True``) keep their steps as ``ckptkit.distributed`` folders
through ``_sharded`` and ``_sharded_steps`` (only ``_sharded`` imports
torch.distributed).
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

from ckptkit.manager._fallback import CheckpointFallbackWarning
from ckptkit.manager._manager import CheckpointManager

__all__ = ["CheckpointFallbackWarning", "CheckpointManager"]
