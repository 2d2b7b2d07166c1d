"""Write a finished run's outputs from its checkpoints.

The original's two files (``report``), plus two extensions kept clearly apart:
``records.tsv`` (one row per input record: what became of it) and
``run_summary.json`` (versions, device, precision, models, timings, counts).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virnucpro_app.report import ChunkVerdicts, write_consensus, write_predictions

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    import torch

    from virnucpro_app.layout import RunLayout

RECORDS_HEADER = (
    "record_id\tlength_bp\tchunks\tkept_frames\tscored_chunks\tvirus_chunks\t"
    "max_virus_score\tstatus\treason\n"
)


@dataclass
class RecordRow:
    """One input record's account (``records.tsv``).

    Attributes:
        record_id: The record's ID.
        length_bp: Its length.
        chunks: Chunks cut from it.
        kept_frames: Stop-free frames kept across its chunks.
        status: ``scored``, ``no_stop_free_frame`` or ``skipped``.
        reason: Why it was skipped (empty otherwise).
        scored_chunks: Chunks with at least one scored frame.
        virus_chunks: Chunks whose verdict is virus.
        max_virus_score: Highest virus score of any of its frames (nan if none).
    """

    record_id: str
    length_bp: int
    chunks: int
    kept_frames: int
    status: str
    reason: str = ""
    scored_chunks: int = 0
    virus_chunks: int = 0
    max_virus_score: float = math.nan


def record_of_chunk(chunk_id: str) -> str:
    """The record a chunk ID belongs to (``{record}_chunk_{k}``)."""
    return chunk_id.rsplit("_chunk_", 1)[0]


@dataclass
class OutputTotals:
    """Counts of a run's outputs, for the summary."""

    frames: int = 0
    chunks_scored: int = 0
    chunks_virus: int = 0
    records: dict[str, int] = field(default_factory=dict)


def score_rows(
    shards: Iterable[tuple[list[str], torch.Tensor]],
) -> Iterator[tuple[str, float, float]]:
    """``(frame ID, score1, score2)`` for every frame, shards in order."""
    for ids, scores in shards:
        values = scores.tolist()
        for frame_id, (others, virus) in zip(ids, values, strict=True):
            yield frame_id, others, virus


def _fold_records(rows: list[RecordRow], verdicts: ChunkVerdicts) -> None:
    by_id = {row.record_id: row for row in rows}
    for chunk_id, is_virus in verdicts.rows():
        row = by_id[record_of_chunk(chunk_id)]
        row.scored_chunks += 1
        row.virus_chunks += int(is_virus)
        virus = verdicts.best[chunk_id][1]
        if math.isnan(row.max_virus_score) or virus > row.max_virus_score:
            row.max_virus_score = virus


def write_records(path: Path, rows: list[RecordRow]) -> None:
    """Write ``records.tsv``, input order."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(RECORDS_HEADER)
        for row in rows:
            score = (
                "" if math.isnan(row.max_virus_score) else f"{row.max_virus_score:.6g}"
            )
            handle.write(
                f"{row.record_id}\t{row.length_bp}\t{row.chunks}\t{row.kept_frames}\t"
                f"{row.scored_chunks}\t{row.virus_chunks}\t{score}\t{row.status}\t"
                f"{row.reason}\n"
            )


def write_outputs(
    layout: RunLayout,
    *,
    shards: Iterable[tuple[list[str], torch.Tensor]],
    records: list[RecordRow],
) -> OutputTotals:
    """Write the original's two files and the per-record table.

    Args:
        layout: The run folder.
        shards: ``(frame IDs, [N, 2] scores)`` of every shard, in order.
        records: One row per input record, input order.

    Returns:
        Counts for the run summary.
    """
    totals = OutputTotals()

    def counted() -> Iterator[tuple[str, float, float]]:
        for row in score_rows(shards):
            totals.frames += 1
            yield row

    verdicts = write_predictions(layout.predictions_path, counted())
    write_consensus(layout.consensus_path, verdicts)
    _fold_records(records, verdicts)
    write_records(layout.records_report_path, records)
    totals.chunks_scored = len(verdicts.best)
    totals.chunks_virus = sum(1 for _, virus in verdicts.rows() if virus)
    for row in records:
        totals.records[row.status] = totals.records.get(row.status, 0) + 1
    return totals


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write ``run_summary.json`` (sorted keys, two-space indent)."""
    path.write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
