"""One error on every rank: how a failure on any rank reaches all of them.

DCP runs each phase of a save or load on every rank, gathers what each rank
raised, and raises one ``CheckpointException`` (a ``BaseException`` listing every
rank's error) on all ranks. ckptkit turns that into a documented error, the same
on every rank: the error of the lowest failing rank, rebuilt with its class when
it is a ckptkit error or a ``KeyError``/``ValueError``/``TypeError``/
``FileExistsError`` (a bad request), else :class:`RankFailedError`.

ckptkit's errors take ``(path, reason)`` and do not survive pickling (DCP's
collectives pickle the exceptions they gather), so inside DCP's phases they
travel as :class:`PortableError`, which carries class name, path and reason.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ckptkit import errors as _errors_module
from ckptkit.errors import CheckpointError, MigrationError, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Built-in errors that mean "the request is wrong" and are re-raised as they are
#: (``FileExistsError``: the target path holds something that is no checkpoint).
_REQUEST_ERRORS = (KeyError, ValueError, TypeError, FileExistsError)


class RankFailedError(RuntimeError):
    """A collective save or load failed on some rank; every rank raises this.

    Raised when the first failing rank's error is not a ckptkit error nor a bad
    request: a full disk, a permission problem, a rank that died (the process
    group reports a lost peer or its timeout). After a failed save nothing was
    committed: the checkpoint path holds what it held before.

    Attributes:
        path: The checkpoint folder concerned.
        failures: One line per failed rank (``"OSError: [Errno 28] ..."``).
    """

    def __init__(self, path: str, failures: Mapping[int, str], action: str) -> None:
        self.path = path
        self.failures = dict(failures)
        first = min(self.failures)
        where = ", ".join(str(rank) for rank in sorted(self.failures))
        message = f"{path}: {action} failed on rank {where}: {self.failures[first]}"
        super().__init__(message)


class PortableError(Exception):
    """A ckptkit error in a form that survives pickling between ranks."""

    def __init__(self, class_name: str, path: str | None, reason: str) -> None:
        super().__init__(class_name, path, reason)
        self.class_name, self.path, self.reason = class_name, path, reason

    def __str__(self) -> str:
        return f"{self.class_name}: {self.path}: {self.reason}"

    def rebuild(self) -> CheckpointError:
        """The original ckptkit error (its class, path and reason)."""
        found = getattr(_errors_module, self.class_name, None)
        if not (isinstance(found, type) and issubclass(found, CheckpointError)):
            return CheckpointError(self.path, self.reason)
        if issubclass(found, MigrationError):
            migration_error: MigrationError = found(self.reason, self.path)
            return migration_error
        return found(self.path, self.reason)


def portable(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make ckptkit errors raised by ``func`` survive DCP's gathering."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except CheckpointError as error:
            raise PortableError(
                type(error).__name__, error.path, error.reason
            ) from None

    return wrapper


def one_line(error: BaseException) -> str:
    """``"OSError: [Errno 28] No space left on device"``, first line only."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def agreed_error(failures: Mapping[int, Any], path: str, action: str) -> BaseException:
    """The error every rank raises for DCP's per-rank ``failures``.

    ``failures`` maps rank to ``(error, trace)`` (``CheckpointException.failures``);
    ``action`` (``"save"`` or ``"load"``) is for the message.
    """
    errors = {rank: pair[0] for rank, pair in failures.items()}
    first = errors[min(errors)]
    if isinstance(first, PortableError):
        return first.rebuild()
    if isinstance(first, CheckpointError | SerializationError):
        return first
    if isinstance(first, _REQUEST_ERRORS):
        return type(first)(*first.args)
    return RankFailedError(path, {r: one_line(e) for r, e in errors.items()}, action)
