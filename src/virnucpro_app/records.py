"""The per-record account: what became of every input record, one TSV row each.

Nothing is lost silently: each record ends as ``prepared`` (at least one
stop-free frame; ``scored`` once predict scored its frames),
``no_stop_free_frame`` (chunked, but no frame survived the filter; the original
drops these without a word) or ``skipped`` with a reason.

One row type, :class:`RecordRow`, carries every field any command reports; a
:class:`RecordsTable` says which columns a command writes to ``records.tsv`` and
how, and :class:`RecordsWriter` writes any table. ``prepare`` writes
:data:`PREPARE_TABLE` and ``predict`` (and train's feature folders)
:data:`PREDICT_TABLE`, each exactly as before the two shared a type; giving
both commands one table is a change of these two constants.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path


class RecordStatus(StrEnum):
    """What became of a record."""

    PREPARED = "prepared"
    NO_STOP_FREE_FRAME = "no_stop_free_frame"
    SKIPPED = "skipped"
    #: predict: the record's frames were embedded and scored.
    SCORED = "scored"


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One input record's account.

    Attributes:
        index: 0-based position among all records of all inputs.
        file: The input file it came from (empty once read back from a
            checkpoint, which does not store it).
        record_id: First word of its header.
        length_bp: Sequence length as read.
        num_chunks: Chunks cut from it (0 when skipped).
        num_frames: Stop-free frames kept over all its chunks.
        status: A :class:`RecordStatus` value.
        reason: For ``skipped``: a short reason code in ``prepare``, the full
            message in ``predict``; empty otherwise.
        detail: For ``skipped`` in ``prepare``: file, line, record and the fix.
        scored_chunks: predict: chunks with at least one scored frame.
        virus_chunks: predict: chunks whose verdict is virus.
        max_virus_score: predict: highest virus score of its frames (nan if none).
    """

    index: int
    file: str
    record_id: str
    length_bp: int
    num_chunks: int
    num_frames: int
    status: str
    reason: str = ""
    detail: str = ""
    scored_chunks: int = 0
    virus_chunks: int = 0
    max_virus_score: float = math.nan


@dataclass(frozen=True, slots=True)
class RecordColumn:
    """One column of ``records.tsv``: its header and how a row's cell reads.

    Attributes:
        name: The header.
        cell: The cell text of a row.
    """

    name: str
    cell: Callable[[RecordRow], object]

    @classmethod
    def of(cls, name: str, field: str | None = None) -> RecordColumn:
        """The column ``name`` showing the row's attribute ``field`` (default: name)."""
        return cls(name, attrgetter(field or name))


def _score_text(row: RecordRow) -> str:
    score = row.max_virus_score
    return "" if math.isnan(score) else f"{score:.6g}"


@dataclass(frozen=True, slots=True)
class RecordsTable:
    """The columns a command writes to ``records.tsv``, and how.

    Attributes:
        columns: In order.
        quoted: Quote cells as the ``csv`` module does (tabs, newlines and
            quotes in a cell); otherwise cells are written as they are (the
            rows must then hold no tab or newline).
    """

    columns: tuple[RecordColumn, ...]
    quoted: bool = True

    @property
    def header(self) -> list[str]:
        """The column names."""
        return [column.name for column in self.columns]


#: Fields only ``predict`` fills.
SCORE_FIELDS = ("scored_chunks", "virus_chunks", "max_virus_score")
#: ``prepare``: every field but the scores, in field order, csv-quoted.
PREPARE_TABLE = RecordsTable(
    tuple(
        RecordColumn.of(item.name)
        for item in fields(RecordRow)
        if item.name not in SCORE_FIELDS
    )
)
#: ``predict``: the account with the scores (reasons hold no tabs or newlines).
PREDICT_TABLE = RecordsTable(
    (
        RecordColumn.of("record_id"),
        RecordColumn.of("length_bp"),
        RecordColumn.of("chunks", "num_chunks"),
        RecordColumn.of("kept_frames", "num_frames"),
        RecordColumn.of("scored_chunks"),
        RecordColumn.of("virus_chunks"),
        RecordColumn("max_virus_score", _score_text),
        RecordColumn.of("status"),
        RecordColumn.of("reason"),
    ),
    quoted=False,
)


class RecordsWriter:
    r"""Writes rows as tab-separated lines under the table's header.

    Args:
        handle: A text file opened with ``newline=""``.
        table: Which columns, and how.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> writer = RecordsWriter(out, PREPARE_TABLE)
        >>> writer.write([RecordRow(0, "a.fa", "c1", 900, 2, 3, "prepared")])
        >>> out.getvalue().splitlines()[1]
        '0\ta.fa\tc1\t900\t2\t3\tprepared\t\t'
    """

    def __init__(self, handle: IO[str], table: RecordsTable) -> None:
        self._cells = [column.cell for column in table.columns]
        self._line: Callable[[Iterable[object]], object]
        if table.quoted:
            quoting = csv.writer(handle, delimiter="\t", lineterminator="\n")
            self._line = quoting.writerow
        else:
            self._line = _plain_writer(handle)
        self._line(table.header)

    def write(self, rows: Iterable[RecordRow]) -> None:
        """Append one line per row.

        Args:
            rows: Rows in input order.
        """
        cells = self._cells
        for row in rows:
            self._line([cell(row) for cell in cells])


def _plain_writer(handle: IO[str]) -> Callable[[Iterable[object]], object]:
    def line(cells: Iterable[object]) -> int:
        return handle.write("\t".join(map(str, cells)) + "\n")

    return line


def write_records(path: Path, rows: Iterable[RecordRow], table: RecordsTable) -> None:
    """Write ``records.tsv`` at ``path``: the table's header, then the rows.

    Args:
        path: The file (replaced).
        rows: Rows in input order.
        table: Which columns, and how.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        RecordsWriter(handle, table).write(rows)


@dataclass(frozen=True, slots=True)
class RecordTally:
    """How many records ended in each status.

    Attributes:
        counts: Status value -> number of records.
    """

    counts: Counter[str]

    @classmethod
    def of(cls, rows: Iterable[RecordRow]) -> RecordTally:
        """Count the rows by status.

        Args:
            rows: Any rows.

        Returns:
            The tally.
        """
        return cls(Counter(row.status for row in rows))

    def add(self, rows: Iterable[RecordRow]) -> None:
        """Count more rows into this tally.

        Args:
            rows: More rows.
        """
        self.counts.update(row.status for row in rows)

    @property
    def num_records(self) -> int:
        """All records counted."""
        return sum(self.counts.values())

    @property
    def num_skipped(self) -> int:
        """Records skipped for a problem in the input."""
        return self.counts[RecordStatus.SKIPPED]
