"""Several processes append to one ledger at once: no entry lost, doubled or torn."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from typing import TYPE_CHECKING

from ckptkit.ledger import FailureLedger

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

WRITERS = 6
ENTRIES_PER_WRITER = 300


def _reason(writer: int, index: int) -> str:
    # Every escaped character, and lengths from a few bytes to ~8 KB (beyond a
    # pipe buffer and a page), so that a torn or interleaved write shows.
    repeats = 2000 if index % 50 == 0 else (index % 7) * 10
    return f"writer {writer} #{index} " + "x|\\\n" * repeats


def _path(writer: int, index: int) -> str:
    return f"ckpt/w{writer}|{index}.pt"


def _append_many(directory: str, writer: int, start: Barrier) -> None:
    ledger = FailureLedger(directory, fsync=False)
    start.wait()  # every writer starts appending at the same moment
    for index in range(ENTRIES_PER_WRITER):
        ledger.record(_path(writer, index), _reason(writer, index))


def test_concurrent_appends_never_interleave_or_tear(tmp_path: Path) -> None:
    # fork: the children share the parent's imports (torch takes seconds to
    # import); each is still its own process with its own file descriptors.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(WRITERS)
    children = [
        context.Process(target=_append_many, args=(str(tmp_path), writer, start))
        for writer in range(WRITERS)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0] * WRITERS

    ledger = FailureLedger(tmp_path)
    assert ledger.path.read_bytes().count(b"\n") == WRITERS * ENTRIES_PER_WRITER
    assert ledger.malformed == []
    entries = ledger.entries()
    expected = Counter(
        (_path(writer, index), _reason(writer, index))
        for writer in range(WRITERS)
        for index in range(ENTRIES_PER_WRITER)
    )
    assert Counter((e.path, e.reason) for e in entries) == expected
    # Each writer's own entries stay in the order it appended them.
    for writer in range(WRITERS):
        mine = [e.path for e in entries if e.path.startswith(f"ckpt/w{writer}|")]
        assert mine == [_path(writer, i) for i in range(ENTRIES_PER_WRITER)]
