"""The per-record account: what became of every input record, one TSV row each.

Nothing is lost silently: each record ends as ``prepared`` (at least one
stop-free frame), ``no_stop_free_frame`` (chunked, but no frame survived the
filter; the original drops these without a word) or ``skipped`` with a reason.

:class:`RecordAccount` is a frozen dataclass so that later stages can extend it:
subclass it with more fields (or other status values) and
:class:`RecordsReportWriter` writes the extra columns too, in field order.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class RecordStatus(StrEnum):
    """What became of a record in ``prepare``."""

    PREPARED = "prepared"
    NO_STOP_FREE_FRAME = "no_stop_free_frame"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class RecordAccount:
    """One input record's row in the report.

    Attributes:
        index: 0-based position among all records of all inputs.
        file: The input file it came from.
        record_id: First word of its header.
        length_bp: Sequence length as read.
        num_chunks: Chunks cut from it (0 when skipped).
        num_frames: Stop-free frames kept over all its chunks.
        status: A :class:`RecordStatus` value (``str`` so that later stages
            may use their own values).
        reason: For ``skipped``: a short reason code; empty otherwise.
        detail: For ``skipped``: file, line, record and the fix.
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


class RecordsReportWriter:
    r"""Writes accounts as tab-separated rows under a header of field names.

    Args:
        handle: A text file opened with ``newline=""``.
        account_type: The account class whose fields are the columns.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> writer = RecordsReportWriter(out)
        >>> writer.write([RecordAccount(0, "a.fa", "c1", 900, 2, 3, "prepared")])
        >>> out.getvalue().splitlines()[1]
        '0\ta.fa\tc1\t900\t2\t3\tprepared\t\t'
    """

    def __init__(
        self, handle: IO[str], account_type: type[RecordAccount] = RecordAccount
    ) -> None:
        names = [field.name for field in fields(account_type)]
        self._row = attrgetter(*names)
        self._writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        self._writer.writerow(names)

    def write(self, accounts: Iterable[RecordAccount]) -> None:
        """Append one row per account.

        Args:
            accounts: Accounts in input order.
        """
        self._writer.writerows(map(self._row, accounts))


@dataclass(frozen=True, slots=True)
class RecordTally:
    """How many records ended in each status.

    Attributes:
        counts: Status value -> number of records.
    """

    counts: Counter[str]

    @classmethod
    def of(cls, accounts: Iterable[RecordAccount]) -> RecordTally:
        """Count the accounts by status.

        Args:
            accounts: Any accounts.

        Returns:
            The tally.
        """
        return cls(Counter(account.status for account in accounts))

    def add(self, accounts: Iterable[RecordAccount]) -> None:
        """Count more accounts into this tally.

        Args:
            accounts: More accounts.
        """
        self.counts.update(account.status for account in accounts)

    @property
    def num_records(self) -> int:
        """All records counted."""
        return sum(self.counts.values())

    @property
    def num_skipped(self) -> int:
        """Records skipped for a problem in the input."""
        return self.counts[RecordStatus.SKIPPED]
