"""Write a finished run's outputs from its checkpoints.

The original's two files (``report``), plus two extensions kept clearly apart:
``records.tsv`` (one row per input record: what became of it) and
``run_summary.json`` (versions, device, precision, models, timings, counts).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from virnucpro_app.records import (
    DEFAULT_RECORD_THRESHOLD,
    RecordRow,
    RecordStatus,
    RecordTally,
    record_verdict,
    write_records,
)
from virnucpro_app.report import ChunkVerdicts, write_consensus, write_predictions

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    import torch

    from virnucpro_app.layout import RunLayout


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
    verdicts: dict[str, int] = field(default_factory=dict)


@dataclass
class _RecordScores:
    """Running per-record counts of the chunk verdicts."""

    scored_chunks: int = 0
    virus_chunks: int = 0
    max_virus_score: float | None = None


def _fold_records(
    rows: list[RecordRow], verdicts: ChunkVerdicts, threshold: float
) -> list[RecordRow]:
    """The rows with their chunks' verdicts, best virus score and verdict."""
    scores: dict[str, _RecordScores] = {}
    for chunk_id, is_virus in verdicts.rows():
        tally = scores.setdefault(record_of_chunk(chunk_id), _RecordScores())
        tally.scored_chunks += 1
        tally.virus_chunks += int(is_virus)
        virus = verdicts.best[chunk_id][1]
        if tally.max_virus_score is None or virus > tally.max_virus_score:
            tally.max_virus_score = virus
    folded = []
    for row in rows:
        tally = scores.get(row.record_id, _RecordScores())
        fraction, verdict = record_verdict(
            tally.scored_chunks, tally.virus_chunks, threshold
        )
        if row.status == RecordStatus.SKIPPED:
            verdict = ""
        folded.append(
            replace(
                row,
                scored_chunks=tally.scored_chunks,
                virus_chunks=tally.virus_chunks,
                viral_fraction=fraction,
                max_virus_score=tally.max_virus_score,
                verdict=verdict,
            )
        )
    return folded


def write_outputs(
    layout: RunLayout,
    *,
    shards: Iterable[tuple[list[str], torch.Tensor]],
    records: list[RecordRow],
    record_threshold: float = DEFAULT_RECORD_THRESHOLD,
) -> OutputTotals:
    """Write the original's two files and the per-record table.

    Args:
        layout: The run folder.
        shards: ``(frame IDs, [N, 2] scores)`` of every shard, in order.
        records: One row per input record, input order.
        record_threshold: Viral fraction of its chunks from which a record
            is called ``virus`` (:func:`virnucpro_app.records.record_verdict`).

    Returns:
        Counts for the run summary.
    """
    totals = OutputTotals()

    def rows() -> Iterator[tuple[str, float, float]]:
        """``(frame ID, score1, score2)`` for every frame, shards in order."""
        for ids, scores in shards:
            totals.frames += len(ids)
            for frame_id, (others, virus) in zip(ids, scores.tolist(), strict=True):
                yield frame_id, others, virus

    verdicts = write_predictions(layout.predictions_path, rows())
    write_consensus(layout.consensus_path, verdicts)
    folded = _fold_records(records, verdicts, record_threshold)
    write_records(layout.records_report_path, folded)
    totals.chunks_scored = len(verdicts.best)
    totals.chunks_virus = sum(1 for _, virus in verdicts.rows() if virus)
    totals.records = dict(RecordTally.of(records).counts)
    totals.verdicts = dict(Counter(row.verdict or "none" for row in folded))
    return totals


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write ``run_summary.json`` (sorted keys, two-space indent)."""
    path.write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
