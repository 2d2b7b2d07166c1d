"""Preemption: termination signals caught for a manager, so nothing is lost.

Slurm, Kubernetes and spot instances end a job with SIGTERM, then SIGKILL a
grace period later. Its default action ends the process at once, in the middle
of an asynchronous save: the step in flight is lost and its temporary file stays.

With ``CheckpointManager(..., handle_preemption=True)`` the manager's handler sets
``manager.preempted`` and then:

- if a Python handler was installed before, calls it (after the save in flight is
  durable): what happens next is that handler's decision;
- if the signal was ignored, does nothing more;
- otherwise (the default action, ending the process) defers that action: the
  manager's next ``save`` is written synchronously and, once it is durable, the
  manager closes and the signal is delivered again with its default action, so
  the process ends as it would have, one durable step later. ``close()`` (or
  interpreter exit) does the same when no save comes first.

Python runs signal handlers in the main thread only, so the handler is installed
there, and only while the manager is open. A process forked from the manager's
(a ``DataLoader`` worker) inherits the handler but not the manager's duties: in
it, the signal gets its previous disposition at once.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import FrameType

    Handler: TypeAlias = (
        Callable[[int, FrameType | None], object] | int | signal.Handlers | None
    )


def preemption_signals(handle: bool | Collection[int]) -> tuple[int, ...]:  # noqa: FBT001 - the option's own value
    """The signals ``handle_preemption`` asks for (True: SIGTERM).

    Raises:
        ValueError: Not in the main thread, or not a signal number.
    """
    if handle is False:
        return ()
    signals = (signal.SIGTERM,) if handle is True else tuple(handle)
    valid = set(signal.valid_signals())
    for signum in signals:
        if signum not in valid:
            msg = f"handle_preemption: {signum!r} is not a signal (e.g. signal.SIGTERM)"
            raise ValueError(msg)
    if signals and threading.current_thread() is not threading.main_thread():
        msg = (
            "handle_preemption needs the main thread (Python runs signal handlers "
            "there): create the CheckpointManager in the main thread"
        )
        raise ValueError(msg)
    return signals


class PreemptionHandler:
    """Handlers for some signals, chained to the ones installed before them."""

    def __init__(self, signals: tuple[int, ...], finish: Callable[[], None]) -> None:
        self._finish = finish  # waits for the save in flight
        self._pid = os.getpid()
        self._previous: dict[int, Handler] = {}
        self.received: int | None = None
        for signum in signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked child: not the manager's process
            self._forward(signum, frame)
            return
        if self.received is None:
            self.received = signum
        previous = self._previous.get(signum)
        if callable(previous):
            self._finish()
            previous(signum, frame)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        """What the signal would have done without the manager, now."""
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
            return
        disposition = signal.SIG_DFL if previous is None else previous
        signal.signal(signum, disposition)
        if disposition != signal.SIG_IGN:
            signal.raise_signal(signum)

    @property
    def deferred(self) -> int | None:
        """A received signal whose default action was deferred, if any."""
        if self.received is None:
            return None
        previous = self._previous.get(self.received)
        if callable(previous) or previous == signal.SIG_IGN:
            return None
        return self.received

    def uninstall(self) -> None:
        """Put the previous handlers back (those still ours; again does nothing)."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def deliver_deferred(self) -> None:
        """End the process with the deferred signal's default action, if any."""
        signum = self.deferred
        self.uninstall()
        if signum is not None:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
