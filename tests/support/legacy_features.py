"""Feature files exactly as the original VirNucPro and its GPU refactor write them.

``torch.save`` of the documented payloads (docs: ../shared/reference/virnucpro.md):
DNABERT-S ``{'nucleotide': [ids], 'data': [{'label', 'mean_representation':
[floats]}]}``, ESM-2 ``{'proteins': [ids], 'data': [Tensor]}``, merged ``{'ids':
[ids], 'data': Tensor[N, D]}``; the refactor (legacy 0.x) adds ``version`` and
``status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

REFACTOR_KEYS = {"version": "1.0", "status": "complete"}


def _save(path: Path, payload: dict[str, object], *, refactor: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**payload, **(REFACTOR_KEYS if refactor else {})}, path)
    return path


def write_dnabert_features(
    path: Path, ids: Sequence[str], rows: torch.Tensor, *, refactor: bool = False
) -> Path:
    """``output_N_DNABERT_S.pt``: a list of floats per frame, as the original."""
    data = [
        {"label": frame_id, "mean_representation": row.tolist()}
        for frame_id, row in zip(ids, rows, strict=True)
    ]
    return _save(path, {"nucleotide": list(ids), "data": data}, refactor=refactor)


def write_esm_features(
    path: Path, ids: Sequence[str], rows: torch.Tensor, *, refactor: bool = False
) -> Path:
    """``output_N_ESM.pt``: one tensor per protein (its own storage, not a view)."""
    data = [row.clone() for row in rows]
    return _save(path, {"proteins": list(ids), "data": data}, refactor=refactor)


def write_merged_features(
    path: Path, ids: Sequence[str], rows: torch.Tensor, *, refactor: bool = False
) -> Path:
    """``output_N_merged.pt``: ``cat(DNABERT-S, ESM-2)`` per frame, one tensor."""
    return _save(path, {"ids": list(ids), "data": rows.clone()}, refactor=refactor)
