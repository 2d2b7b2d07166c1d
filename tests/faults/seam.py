"""Recording and failing ckptkit's file operations beneath the I/O seam.

Every raw call in ``fs.SYSTEM_CALLS`` is wrapped: a run is recorded as a list of
calls (operation name, its count so far, arguments), and one chosen call, the
k-th of one operation, can be made to fail with a :class:`Fault`. Faults go in
beneath the seam's EINTR retry, where a real system call would fail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Operations that change the disk or take space: where ENOSPC/EDQUOT can come.
ALLOCATING = frozenset(
    {
        "open_new",
        "open_append",
        "write",
        "truncate",
        "fsync",
        "fsync_directory",
        "close",
        "replace",
        "link",
        "mkdir",
    }
)


@dataclass(frozen=True)
class Call:
    """One call of one operation: ``name`` for the ``index``-th time (from 1)."""

    name: str
    index: int
    args: tuple[Any, ...] = ()

    def __str__(self) -> str:
        shown = ", ".join(_short(a) for a in self.args)
        return f"{self.name}#{self.index}({shown})"


def _short(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(memoryview(value))} bytes>"
    name = getattr(value, "name", None)
    if isinstance(name, str):  # a file handle
        return Path(name).name
    return Path(value).name if isinstance(value, os.PathLike) else repr(value)


@dataclass(frozen=True)
class Fault:
    """A way one call fails.

    Attributes:
        name: Its name in reports (``"ENOSPC"``, ``"short write"``, ...).
        operations: The operations it applies to (None: every operation).
        must_succeed: The call under test must still succeed (EINTR is retried,
            a short write is continued).
    """

    name: str
    operations: frozenset[str] | None
    must_succeed: bool = False

    def applies_to(self, operation: str) -> bool:
        """Whether this fault can hit ``operation``."""
        return self.operations is None or operation in self.operations

    def make(self, real: Callable[..., Any], injector: Injector) -> Callable[..., Any]:
        """The replacement of the one failing call."""
        if self.name in _ERRNO:
            code = _ERRNO[self.name]

            def failing(*_args: Any, **_kwargs: Any) -> Any:
                exception = InterruptedError if code == errno.EINTR else OSError
                raise exception(code, f"{os.strerror(code)} (injected)")

            return failing
        if self.name in ("short write", "disk fills"):
            if self.name == "disk fills":
                injector.stalled = True

            def short(handle: Any, data: Any) -> Any:
                view = memoryview(data).cast("B")
                return real(handle, view[: max(1, len(view) // 2)])

            return short
        raise AssertionError(self.name)


_ERRNO = {
    "ENOSPC": errno.ENOSPC,
    "EDQUOT": errno.EDQUOT,
    "EIO": errno.EIO,
    "EINTR": errno.EINTR,
    "failing fsync": errno.EIO,
    "failing rename": errno.EXDEV,
    "failing directory fsync": errno.EIO,
}

#: Every fault class tried at every call point it applies to.
FAULTS = (
    Fault("ENOSPC", ALLOCATING),
    Fault("EDQUOT", ALLOCATING),
    Fault("EIO", None),
    # close is never repeated (see fs): EINTR there is not a retry case.
    Fault("EINTR", frozenset(fs.SYSTEM_CALLS) - {"close"}, must_succeed=True),
    Fault("short write", frozenset({"write"}), must_succeed=True),
    # A short write, then no write makes progress: the disk just filled up.
    Fault("disk fills", frozenset({"write"})),
    Fault("failing fsync", frozenset({"fsync"})),
    Fault("failing rename", frozenset({"replace", "link"})),
    Fault("failing directory fsync", frozenset({"fsync_directory"})),
)


@dataclass
class Injector:
    """Wraps every raw call: records calls, fails the chosen one.

    Attributes:
        target: ``(operation, k)`` of the call to fail, or None to only record.
        fault: How it fails.
        calls: Every call started, in order.
        done: The calls that returned normally (with their arguments).
        hit: The call that failed, once it has.
        stalled: After a "disk fills" fault, every later write writes nothing.
    """

    target: tuple[str, int] | None = None
    fault: Fault | None = None
    calls: list[Call] = field(default_factory=list)
    done: list[Call] = field(default_factory=list)
    hit: Call | None = None
    stalled: bool = False
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """The recording (and maybe failing) replacement of one raw call."""

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                index = self._counts.get(name, 0) + 1
                self._counts[name] = index
                record = Call(name, index, args)
                self.calls.append(record)
                chosen = self.target == (name, index) and self.fault is not None
                if chosen:
                    self.hit = record
            if chosen and self.fault is not None:
                result = self.fault.make(real, self)(*args, **kwargs)
            elif name == "write" and self.stalled:
                result = 0
            else:
                result = real(*args, **kwargs)
            with self._lock:
                self.done.append(record)
            return result

        return call

    def replaced(self, target: os.PathLike[str]) -> bool:
        """Whether a rename over ``target`` completed."""
        wanted = os.fspath(target)
        return any(
            c.name == "replace" and os.fspath(c.args[1]) == wanted for c in self.done
        )


@contextlib.contextmanager
def injected(injector: Injector) -> Iterator[Injector]:
    """Install ``injector`` beneath every operation of the seam for a block."""
    saved = dict(fs.SYSTEM_CALLS)
    for name, real in saved.items():
        fs.SYSTEM_CALLS[name] = injector.wrap(name, real)
    try:
        yield injector
    finally:
        fs.SYSTEM_CALLS.clear()
        fs.SYSTEM_CALLS.update(saved)


def call_points(run: Callable[[], object]) -> list[Call]:
    """Record a fault-free run and return every call it made."""
    with injected(Injector()) as recorder:
        run()
    return recorder.calls
