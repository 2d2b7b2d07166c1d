"""The per-record account: what became of every input record, one TSV row each.

Nothing is lost silently: each record ends as ``prepared`` (at least one
stop-free frame; ``scored`` once predict scored its frames),
``no_stop_free_frame`` (chunked, but no frame survived the filter; the original
drops these without a word) or ``skipped`` with a reason.

One row type, :class:`RecordRow`, carries every field any command reports, and
one table, :data:`RECORDS_TABLE`, is what ``prepare``, ``predict`` and train's
feature folders write to ``records.tsv`` (:class:`RecordsWriter`): the score
columns are empty until ``predict`` has scored the record. The per-record
verdict is :func:`record_verdict`'s rule.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
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
        scored_chunks: predict: chunks with at least one scored frame (None
            before predict scored the record).
        virus_chunks: predict: chunks whose verdict is virus.
        viral_fraction: predict: ``virus_chunks / scored_chunks`` (None without
            a scored chunk).
        max_virus_score: predict: highest virus score of its frames (None if none).
        verdict: predict: ``virus``, ``non-virus`` or empty (see
            :func:`record_verdict`).
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
    scored_chunks: int | None = None
    virus_chunks: int | None = None
    viral_fraction: float | None = None
    max_virus_score: float | None = None
    verdict: str = ""


#: ``--record-threshold``: a record is viral when at least this fraction of its
#: scored chunks are.
DEFAULT_RECORD_THRESHOLD = 0.5
VIRUS = "virus"
NON_VIRUS = "non-virus"


def record_verdict(
    scored_chunks: int, virus_chunks: int, threshold: float
) -> tuple[float | None, str]:
    """A record's viral fraction and verdict from its chunks' verdicts.

    The rule: ``viral_fraction = virus_chunks / scored_chunks``; the record is
    ``virus`` when ``viral_fraction >= threshold`` (ties count as viral, as the
    original's per-chunk rule does), else ``non-virus``; no verdict without a
    scored chunk.

    Args:
        scored_chunks: Chunks with at least one scored frame.
        virus_chunks: Those whose ``Is_Virus`` is ``True``.
        threshold: ``--record-threshold``, between 0 and 1.

    Returns:
        ``(viral fraction or None, verdict or "")``.

    Example:
        >>> record_verdict(4, 2, 0.5), record_verdict(3, 1, 0.5)
        ((0.5, 'virus'), (0.3333333333333333, 'non-virus'))
        >>> record_verdict(0, 0, 0.5)
        (None, '')
    """
    if scored_chunks <= 0:
        return None, ""
    fraction = virus_chunks / scored_chunks
    return fraction, VIRUS if fraction >= threshold else NON_VIRUS


@dataclass(frozen=True, slots=True)
class RecordColumn:
    """One column of ``records.tsv``: its header and how a row's cell reads."""

    name: str
    cell: Callable[[RecordRow], object]

    @classmethod
    def of(cls, name: str, field: str | None = None) -> RecordColumn:
        """The column ``name`` showing the row's attribute ``field`` (default: name)."""
        return cls(name, attrgetter(field or name))


def _scored(name: str, spec: str = "") -> Callable[[RecordRow], object]:
    """A column only predict fills: empty when None, else formatted by ``spec``."""

    def cell(row: RecordRow) -> object:
        value = getattr(row, name)
        return "" if value is None else format(value, spec)

    return cell


@dataclass(frozen=True, slots=True)
class RecordsTable:
    """The columns of ``records.tsv``, and how its cells read."""

    columns: tuple[RecordColumn, ...]


#: The one ``records.tsv`` schema of ``prepare`` and ``predict``: the account,
#: then the scores (empty until ``predict`` scored the record).
RECORDS_TABLE = RecordsTable(
    (
        RecordColumn.of("index"),
        RecordColumn.of("file"),
        RecordColumn.of("record_id"),
        RecordColumn.of("length_bp"),
        RecordColumn.of("num_chunks"),
        RecordColumn.of("num_frames"),
        RecordColumn.of("status"),
        RecordColumn.of("reason"),
        RecordColumn.of("detail"),
        RecordColumn("scored_chunks", _scored("scored_chunks")),
        RecordColumn("virus_chunks", _scored("virus_chunks")),
        # Floats: six significant digits.
        RecordColumn("viral_fraction", _scored("viral_fraction", ".6g")),
        RecordColumn("max_virus_score", _scored("max_virus_score", ".6g")),
        RecordColumn.of("verdict"),
    )
)


class RecordsWriter:
    r"""Writes rows as tab-separated lines under the table's header.

    Cells holding a tab, a newline or a double quote are quoted as the ``csv``
    module does.

    Args:
        handle: A text file opened with ``newline=""``.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> writer = RecordsWriter(out, RECORDS_TABLE)
        >>> writer.write([RecordRow(0, "a.fa", "c1", 900, 2, 3, "prepared")])
        >>> out.getvalue().splitlines()[1]
        '0\ta.fa\tc1\t900\t2\t3\tprepared\t\t\t\t\t\t\t'
    """

    def __init__(self, handle: IO[str], table: RecordsTable = RECORDS_TABLE) -> None:
        self._cells = [column.cell for column in table.columns]
        quoting = csv.writer(handle, delimiter="\t", lineterminator="\n")
        self._line: Callable[[Iterable[object]], object] = quoting.writerow
        self._line([column.name for column in table.columns])

    def write(self, rows: Iterable[RecordRow]) -> None:
        """Append one line per row."""
        cells = self._cells
        for row in rows:
            self._line([cell(row) for cell in cells])


def write_records(path: Path, rows: Iterable[RecordRow]) -> None:
    """Write ``records.tsv`` at ``path``: the header, then the rows.

    Args:
        path: The file (replaced).
        rows: Rows in input order.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        RecordsWriter(handle, RECORDS_TABLE).write(rows)


@dataclass(frozen=True, slots=True)
class RecordTally:
    """How many records ended in each status.

    Attributes:
        counts: Status value -> number of records.
    """

    counts: Counter[str]

    @classmethod
    def of(cls, rows: Iterable[RecordRow]) -> RecordTally:
        """Count the rows by status."""
        return cls(Counter(row.status for row in rows))

    def add(self, rows: Iterable[RecordRow]) -> None:
        """Count more rows into this tally."""
        self.counts.update(row.status for row in rows)

    @property
    def num_records(self) -> int:
        """All records counted."""
        return sum(self.counts.values())

    @property
    def num_skipped(self) -> int:
        """Records skipped for a problem in the input."""
        return self.counts[RecordStatus.SKIPPED]
