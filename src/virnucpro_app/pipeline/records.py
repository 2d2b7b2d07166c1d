"""Input records as the predict pipeline needs them: checked, chunked, translated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from virnucpro_app.chunking import chunk_id, plan_chunks
from virnucpro_app.pipeline.outputs import RecordRow
from virnucpro_app.translation import FRAME_NAMES, select_frames

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path


@dataclass
class PreparedRecord:
    """One input record after preparation.

    Attributes:
        row: Its account (``scored``, ``no_stop_free_frame`` or ``skipped``).
        chunks: ``(chunk ID, uppercase chunk)`` in order.
        frames: ``(frame ID, nucleotide, protein)`` of the kept frames in order.
    """

    row: RecordRow
    chunks: list[tuple[str, str]] = field(default_factory=list)
    frames: list[tuple[str, str, str]] = field(default_factory=list)


def prepare_record(record_id: str, sequence: str, chunk_size: int) -> PreparedRecord:
    """Chunk one valid record and keep its chunks' stop-free frames."""
    upper = sequence.upper()
    plan = plan_chunks(np.array([len(upper)], dtype=np.int64), chunk_size)
    chunk_ids = [chunk_id(record_id, int(n) + 1) for n in plan.number]
    chunks = [
        (cid, upper[s : s + n])
        for cid, s, n in zip(
            chunk_ids, plan.start.tolist(), plan.length.tolist(), strict=True
        )
    ]
    kept = select_frames(upper.encode("ascii"), plan.start, plan.length)
    frames = [
        (chunk_ids[c] + FRAME_NAMES[f], nucleotide, protein)
        for c, f, nucleotide, protein in zip(
            kept.chunk.tolist(),
            kept.frame.tolist(),
            kept.nucleotides,
            kept.proteins,
            strict=True,
        )
    ]
    status = "scored" if frames else "no_stop_free_frame"
    row = RecordRow(record_id, len(upper), len(chunks), len(frames), status)
    return PreparedRecord(row, chunks, frames)


def prepared_records(
    paths: Iterable[Path], chunk_size: int, *, workers: int = 1
) -> Iterator[PreparedRecord]:
    """Every input record, prepared or accounted for as skipped, input order.

    Raises:
        InputError: An input that stops the run (see ``virnucpro_app.fasta``).
    """
    del workers  # preparation of one record is fast; parallelism comes later
    for record_id, sequence, skip_reason in _read_checked(list(paths)):
        if skip_reason is not None:
            row = RecordRow(record_id, len(sequence), 0, 0, "skipped", skip_reason)
            yield PreparedRecord(row)
            continue
        yield prepare_record(record_id, sequence, chunk_size)


_IUPAC = frozenset("ACGTURYSWKMBDHVN")


def _read_checked(paths: list[Path]) -> Iterator[tuple[str, str, str | None]]:
    """TEMPORARY reader until virnucpro_app.fasta lands: (id, sequence, skip reason)."""
    import dnaio

    from virnucpro_app.errors import InputError

    seen: set[str] = set()
    for path in paths:
        count = 0
        try:
            with dnaio.open(path, fileformat="fasta") as reader:
                for record in reader:
                    count += 1
                    words = record.name.split()
                    record_id = words[0] if words else ""
                    if record_id in seen:
                        raise InputError(f"{path}: duplicate record ID {record_id!r}")
                    seen.add(record_id)
                    sequence = record.sequence
                    bad = set(sequence.upper()) - _IUPAC
                    if not sequence:
                        yield record_id, sequence, "empty sequence"
                    elif bad:
                        yield record_id, sequence, f"invalid letters {sorted(bad)}"
                    else:
                        yield record_id, sequence, None
        except dnaio.exceptions.FileFormatError as error:
            raise InputError(f"{path}: not FASTA ({error})") from error
        if count == 0:
            raise InputError(f"{path}: no FASTA records")
