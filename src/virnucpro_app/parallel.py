"""An order-keeping map over worker processes with a bounded number of jobs in flight.

``ProcessPoolExecutor.map`` would submit the whole input at once (holding all of
it in memory); here at most ``max_pending`` jobs are out, so a stream of any
length runs in bounded memory, and results come back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

_Key = TypeVar("_Key")
_Arg = TypeVar("_Arg")
_Result = TypeVar("_Result")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one).

    Returns:
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - macOS, Windows


def ordered_map(
    func: Callable[[_Arg], _Result],
    jobs: Iterable[tuple[_Key, _Arg]],
    *,
    workers: int,
) -> Iterator[tuple[_Key, _Result]]:
    """Run ``func(arg)`` in worker processes; yield ``(key, result)`` in input order.

    Args:
        func: A module-level function (it is sent to fresh "spawn" processes).
        jobs: ``(key, arg)`` pairs; the key stays in this process.
        workers: Number of worker processes, at least 1 (``2 * workers`` jobs
            are in flight at most).

    Yields:
        Each job's key with its result, in the order of ``jobs``.

    Raises:
        Exception: Whatever ``func`` raised, when its result is reached.
    """
    limit = 2 * workers
    # "spawn": a forked child would inherit the progress-bar thread and locks.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    pending: deque[tuple[_Key, Future[_Result]]] = deque()
    try:
        for key, arg in jobs:
            pending.append((key, pool.submit(func, arg)))
            if len(pending) >= limit:
                done_key, future = pending.popleft()
                yield done_key, future.result()
        while pending:
            done_key, future = pending.popleft()
            yield done_key, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
