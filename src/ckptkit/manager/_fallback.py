"""Restore the newest good step, falling back past damaged ones with a warning.

Shared by the single-file manager and the sharded one (``_sharded``): both walk
their steps newest first, skip those already found damaged, and announce an
older step restored in place of damaged newer ones the same way.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Protocol

from ckptkit.errors import CheckpointCorruptError, CheckpointNotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from ckptkit.info import Checkpoint
    from ckptkit.ledger import FailureLedger


class CheckpointFallbackWarning(UserWarning):
    """``CheckpointManager.restore`` skipped damaged steps and restored an older one."""


class StepSource(Protocol):
    """What the fallback needs of a folder of steps (files or sharded folders)."""

    directory: Path
    ledger: FailureLedger

    def is_known_damaged(self, path: Path, /) -> bool:
        """Whether this version of ``path`` was already found damaged."""
        ...


def restore_newest(
    steps: Sequence[tuple[int, Path]],
    load: Callable[[Path], Checkpoint],
    *,
    folder: StepSource,
    is_another_step: Callable[[int, Path], bool] | None = None,
    stacklevel: int,
) -> Checkpoint:
    """Load the newest of ``steps`` (``(step, path)``, oldest first) that reads whole.

    ``load`` reads one step in full and raises ``CheckpointCorruptError`` if it is
    damaged (and records it), ``CheckpointNotFoundError`` if it vanished. ``folder``
    (named in the warning and the error) has the damage memory and the ledger. A
    path ``is_another_step`` says holds no step of its own (renamed by hand,
    written by something else) is passed over, not counted damaged.
    ``stacklevel``: where the warning points, counted from this function.

    Raises:
        CheckpointNotFoundError: No step reads back whole.
    """
    skipped: list[str] = []
    for found, path in reversed(steps):
        if folder.is_known_damaged(path):
            skipped.append(f"step {found} (damaged, see the ledger)")
            continue
        if is_another_step is not None and is_another_step(found, path):
            continue  # renamed by hand: not a step (steps() agrees)
        try:
            checkpoint = load(path)
        except CheckpointCorruptError as error:
            skipped.append(f"step {found} ({error.reason})")
            continue
        except CheckpointNotFoundError:  # deleted meanwhile, or never committed
            continue
        if skipped:
            warnings.warn(
                f"{folder.directory}: restored step {found}; newer steps failed "
                f"validation and were recorded in {folder.ledger.path}: "
                + "; ".join(skipped),
                CheckpointFallbackWarning,
                stacklevel=stacklevel + 1,
            )
        return checkpoint
    detail = f": {'; '.join(skipped)}" if skipped else ""
    raise CheckpointNotFoundError(folder.directory, f"no valid step to restore{detail}")
