"""Merge one shard's two embeddings by frame ID and score them with the MLP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from virnucpro_app.errors import PipelineError
from virnucpro_app.layout import ShardStage

if TYPE_CHECKING:
    import ckptkit
    from virnucpro_app.models.classifier import Classifier
    from virnucpro_app.stages.shards import ShardFrames
    from virnucpro_app.stages.store import RunCheckpoints


def merge_embeddings(
    shard: ShardFrames,
    dnabert: torch.Tensor,
    esm: torch.Tensor,
    expected_dim: int | None = None,
) -> torch.Tensor:
    """``cat(DNABERT-S, ESM-2)`` per frame, rows in the shard's frame order.

    Both inputs are rows for ``shard.ids`` in order (the embed stage guarantees
    it by ID); a row count or width mismatch is an error, never a silent skip.
    ``expected_dim`` is the classifier's input width (None: no classifier yet).

    Raises:
        PipelineError: The embeddings do not fit the frames or the classifier.
    """
    if dnabert.shape[0] != len(shard) or esm.shape[0] != len(shard):
        raise PipelineError(
            f"shard {shard.index}: {len(shard)} frames but {dnabert.shape[0]} "
            f"DNABERT-S and {esm.shape[0]} ESM-2 embeddings"
        )
    width = dnabert.shape[1] + esm.shape[1]
    if expected_dim is not None and width != expected_dim:
        raise PipelineError(
            f"the classifier expects {expected_dim}-wide features but DNABERT-S "
            f"({dnabert.shape[1]}) + ESM-2 ({esm.shape[1]}) give {width}: the models "
            "do not belong together"
        )
    return torch.cat([dnabert.to(torch.float32), esm.to(torch.float32)], dim=1)


def classify_shard(
    shard: ShardFrames,
    features: torch.Tensor,
    classifier: Classifier,
    store: RunCheckpoints,
    inputs: dict[str, str],
) -> tuple[torch.Tensor, bool]:
    """Scores ``[N, 2]`` (score1 = P(others), score2 = P(virus)) for one shard.

    A stored scores checkpoint is reused only when it was computed from exactly
    these inputs (the content identities of the frames and both embeddings);
    otherwise the scores are computed again and saved.

    Args:
        shard: The frames.
        features: Their merged embeddings.
        classifier: The MLP.
        store: The run folder's checkpoint rules.
        inputs: ``frames``, ``dnabert`` and ``esm`` content identities.

    Returns:
        The scores, and whether they were computed now.
    """
    existing = store.reuse_shard(shard.index, ShardStage.SCORES)
    if existing is not None and _is_current(existing, shard, inputs):
        scores: torch.Tensor = existing.state["scores"]
        return scores, False
    scores = classifier.scores(features)
    store.save_shard(
        shard.index,
        ShardStage.SCORES,
        {"ids": shard.ids, "scores": scores},
        metadata={
            "shard": shard.index + 1,
            "classifier": classifier.identity,
            "inputs": inputs,
        },
    )
    return scores, True


def _is_current(
    checkpoint: ckptkit.Checkpoint, shard: ShardFrames, inputs: dict[str, str]
) -> bool:
    return (
        checkpoint.info.status == "complete"
        and list(checkpoint.state["ids"]) == shard.ids
        and checkpoint.info.metadata.get("inputs") == inputs
    )
