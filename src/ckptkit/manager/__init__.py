"""``CheckpointManager``: numbered checkpoints of a training run, kept and restored.

The package holds the manager (``_manager``) and its parts: the checks of its
options (``_options``), the lock that keeps it the folder's one writer
(``_lock``), its view of the step files (``_steps``) and their index
(``_index``), the retention rule (``_retention``), restore with fallback
(``_restore``), the copy an asynchronous save takes (``_freeze``, into the host
buffer of ``_snapshot``), the thread that writes it (``_background``), and
preemption signal handling (``_preemption``).
docs/ckptkit/manager.md is the guide.
"""

from __future__ import annotations

from ckptkit.manager._manager import CheckpointManager
from ckptkit.manager._restore import CheckpointFallbackWarning

__all__ = ["CheckpointFallbackWarning", "CheckpointManager"]
