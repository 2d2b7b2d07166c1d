"""ckptkit: durable, versioned, pickle-free checkpoints for PyTorch training state."""

from __future__ import annotations

from ckptkit.types import ExitCode, PathLike, StateTree, Status

__all__ = ["ExitCode", "PathLike", "StateTree", "Status"]
