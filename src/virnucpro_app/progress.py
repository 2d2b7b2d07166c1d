"""Progress bars on stderr: sequences and tokens per second; silent when disabled.

Imports no torch. :func:`throughput_progress` yields a callback with the
``ProgressCallback`` signature of the encoders, ``(sequences, tokens)``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class _RateColumn(ProgressColumn):
    """``123.4 seq/s  45,678 tok/s`` from the task's counters."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("-- seq/s  -- tok/s", style="progress.data.speed")
        tokens = float(task.fields.get("tokens", 0))
        return Text(
            f"{task.completed / elapsed:,.1f} seq/s  {tokens / elapsed:,.0f} tok/s",
            style="progress.data.speed",
        )


def bar_progress(*extra: ProgressColumn) -> Progress:
    """Bars on stderr: description, bar, done/total, ``extra``, elapsed, remaining."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
    )


@contextmanager
def throughput_progress(
    description: str, total: int, *, enabled: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """Show a bar for ``total`` sequences with sequences/s and tokens/s on stderr.

    Args:
        description: Text before the bar.
        total: Sequences expected.
        enabled: ``False`` (``--no-progress``) shows nothing.

    Yields:
        ``advance(sequences, tokens)``, to call as work finishes.
    """
    if not enabled:
        yield lambda _sequences, _tokens: None
        return
    with bar_progress(_RateColumn()) as bar:
        task = bar.add_task(description, total=total, tokens=0)
        seen = {"tokens": 0}

        def advance(sequences: int, tokens: int) -> None:
            seen["tokens"] += tokens
            bar.update(task, advance=sequences, tokens=seen["tokens"])

        yield advance
