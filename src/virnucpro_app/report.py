"""The original VirNucPro output files, byte for byte in their formats.

- ``prediction_results.txt``: tab-separated ``Sequence_ID Prediction score1
  score2``, one row per kept frame in frame order. Scores are printed as numpy
  prints a float32 (the shortest text that parses back to the same float32), as
  the original does.
- ``prediction_results_highestscore.csv``: tab-separated despite its name,
  ``Modified_ID Is_Virus``, one row per chunk (the frame ID without its two-letter
  frame suffix), ``True`` when the chunk's highest virus score is at least its
  highest "others" score, rows sorted by ID as pandas' groupby sorts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from virnucpro_app.models.classifier import LABELS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

PREDICTION_HEADER = "Sequence_ID\tPrediction\tscore1\tscore2\n"
CONSENSUS_HEADER = "Modified_ID\tIs_Virus\n"
#: Frame suffixes are two letters (F1..F3, R1..R3).
FRAME_SUFFIX_LENGTH = 2


def float32_text(value: float) -> str:
    """The shortest text that parses back to the same float32 (numpy's ``str``)."""
    return str(np.float32(value))


def label_for(score_others: float, score_virus: float) -> str:
    """The original's argmax label; a tie goes to "others" (index 0)."""
    virus_wins = np.float32(score_virus) > np.float32(score_others)
    return LABELS[1] if virus_wins else LABELS[0]


def chunk_id_of(frame_id: str) -> str:
    """The chunk a frame belongs to: its ID without the frame suffix."""
    return frame_id[:-FRAME_SUFFIX_LENGTH]


@dataclass
class ChunkVerdicts:
    """Running per-chunk maxima of both scores (the original's consensus)."""

    best: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, frame_id: str, score_others: float, score_virus: float) -> None:
        """Fold one frame's scores into its chunk's maxima."""
        key = chunk_id_of(frame_id)
        others, virus = self.best.get(key, (score_others, score_virus))
        self.best[key] = (max(others, score_others), max(virus, score_virus))

    def is_virus(self, chunk_id: str) -> bool:
        """``max(score2) >= max(score1)`` over the chunk's kept frames."""
        others, virus = self.best[chunk_id]
        return bool(np.float32(virus) >= np.float32(others))

    def rows(self) -> Iterator[tuple[str, bool]]:
        """``(chunk ID, is virus)`` sorted by ID."""
        for chunk_id in sorted(self.best):
            yield chunk_id, self.is_virus(chunk_id)


def write_predictions(
    path: Path, rows: Iterable[tuple[str, float, float]]
) -> ChunkVerdicts:
    """Write ``prediction_results.txt`` and return the per-chunk maxima.

    Args:
        path: The output file.
        rows: ``(frame ID, score1 = P(others), score2 = P(virus))`` in frame order.

    Returns:
        The chunk verdicts, for the consensus file.
    """
    verdicts = ChunkVerdicts()
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(PREDICTION_HEADER)
        for frame_id, others, virus in rows:
            verdicts.add(frame_id, others, virus)
            handle.write(
                f"{frame_id}\t{label_for(others, virus)}\t"
                f"{float32_text(others)}\t{float32_text(virus)}\n"
            )
    return verdicts


def write_consensus(path: Path, verdicts: ChunkVerdicts) -> None:
    """Write ``prediction_results_highestscore.csv`` (tab-separated, sorted by ID)."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(CONSENSUS_HEADER)
        for chunk_id, is_virus in verdicts.rows():
            handle.write(f"{chunk_id}\t{is_virus}\n")
