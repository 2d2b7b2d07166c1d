"""The one asynchronous save in flight: its thread, and the error it leaves.

Interpreter exit waits for every save in flight. It must do so before
``concurrent.futures`` stops accepting work (the writer hashes on a helper
thread): ``threading``'s exit hooks run newest first, before that refusal, while
``atexit`` callbacks run after it. So the join is registered as a threading exit
hook, after (hence before, at exit) the one of ``concurrent.futures.thread``.
Errors are not raised there but by each manager's finalizer, which prints them.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - its exit hook must come first
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


_LIVE: weakref.WeakSet[BackgroundSave] = weakref.WeakSet()


class BackgroundSave:
    """Runs one job at a time on a thread and keeps the error it raised."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        _LIVE.add(self)

    def start(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` on a new thread (the previous one must be joined)."""

        def run() -> None:
            try:
                job()
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self._error = error

        # Not a daemon: even without the exit hook, exit would wait for it.
        self._thread = threading.Thread(target=run, name=name, daemon=False)
        self._thread.start()

    def join(self) -> None:
        """Wait for the job in flight, if any; keep its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        """Wait, then raise the pending error once (at exit it is printed)."""
        self.join()
        error, self._error = self._error, None
        if error is not None:
            raise error


def _join_all() -> None:
    for background in list(_LIVE):
        background.join()


_register_thread_exit = getattr(threading, "_register_atexit", None)
if _register_thread_exit is None:  # pragma: no cover - every CPython since 3.9
    atexit.register(_join_all)
else:
    _register_thread_exit(_join_all)
