"""The process group a sharded manager works in, and agreement across its ranks.

Everything a manager decides (a step verified, a step damaged, what retention
deletes) is decided once and reaches every rank, so that all ranks take the same
branch and meet in the same collectives. Without an initialised process group
the "group" is this process alone and every collective is a no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.distributed as dist

from ckptkit.distributed._errors import PortableError, agreed_error, one_line
from ckptkit.errors import CheckpointError

if TYPE_CHECKING:
    from collections.abc import Callable


class Group:
    """A process group (or this process alone) with the collectives a manager needs."""

    def __init__(self, process_group: dist.ProcessGroup | None) -> None:
        self.active = dist.is_available() and dist.is_initialized()
        self.process_group = process_group
        self.rank = dist.get_rank(process_group) if self.active else 0
        self.size = dist.get_world_size(process_group) if self.active else 1

    @property
    def is_coordinator(self) -> bool:
        """Whether this is the rank that writes the ledger and deletes steps."""
        return self.rank == 0

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, on every rank (in memory: pickled between ranks)."""
        if not self.active:
            return [value]
        found: list[Any] = [None] * self.size
        dist.all_gather_object(found, value, group=self.process_group)
        return found

    def run(self, job: Callable[[], Any], path: str, action: str) -> Any:
        """Run ``job`` on every rank; one error everywhere if it fails anywhere."""
        result: Any = None
        failure: BaseException | None = None
        try:
            result = job()
        except Exception as error:  # noqa: BLE001 - every rank must learn of it
            failure = _portable(error)
        failures = {
            rank: (error, None)
            for rank, error in enumerate(self.gather(failure))
            if error
        }
        if failures:
            raise agreed_error(failures, path, action)
        return result

    def new_group(self) -> dist.ProcessGroup | None:
        """A gloo group of the same ranks, for collectives of a background thread."""
        if not self.active:
            return None
        ranks = None
        if self.process_group is not None:
            ranks = dist.get_process_group_ranks(self.process_group)
        group: dist.ProcessGroup = dist.new_group(ranks=ranks, backend="gloo")
        return group


def _portable(error: BaseException) -> BaseException:
    """An exception that survives pickling with its class and message."""
    if isinstance(error, PortableError):
        return error
    if isinstance(error, CheckpointError):
        return PortableError(type(error).__name__, error.path, error.reason)
    try:
        rebuilt = type(error)(*error.args)
    except Exception:  # noqa: BLE001 - an exotic constructor: keep the text only
        return RuntimeError(one_line(error))
    return rebuilt if str(rebuilt) == str(error) else RuntimeError(one_line(error))
