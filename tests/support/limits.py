"""Per-case limits for tests that run many cases in one test: time, memory."""

from __future__ import annotations

import contextlib
import resource
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType


class CaseTimeoutError(BaseException):
    """A case ran past its time limit (a BaseException: nothing may swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeoutError` in this (main) thread after ``seconds``.

    pytest-timeout's own alarm (same signal) is put back afterwards, less the
    time spent here.
    """

    def expire(_signum: int, _frame: FrameType | None) -> None:
        msg = f"case ran longer than {seconds} s"
        raise CaseTimeoutError(msg)

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    pending, _interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            left = pending - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def _address_space_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    msg = "no VmSize in /proc/self/status"
    raise RuntimeError(msg)


@contextlib.contextmanager
def memory_limit(extra_bytes: int) -> Iterator[None]:
    """Let this process map at most ``extra_bytes`` more while the block runs.

    An allocation beyond that fails (``MemoryError`` or torch's "can't allocate
    memory") instead of succeeding lazily: a case that tries to allocate far
    more than its file is caught by the error it raises.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space_bytes() + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def is_allocation_failure(error: BaseException) -> bool:
    """Whether ``error`` (or anything it was raised from) is a failed allocation."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if isinstance(current, MemoryError) or "allocate" in text:
            return True
        current = current.__cause__ or current.__context__
    return False
