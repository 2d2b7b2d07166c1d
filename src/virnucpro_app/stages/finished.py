"""Finding the shards a resumed run need not compute again.

A shard is finished when each of its checkpoints (frames, both embeddings,
scores) is present, sound and complete, and current: each records the content
identity of what it was computed from, and those match. Headers are read first
(no tensor bytes); only a shard that looks finished is then validated in full,
and of it only the scores are kept (the outputs are written from them), so a
resumed run reads each checkpoint once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from virnucpro_app.layout import ShardStage

if TYPE_CHECKING:
    import torch

    import ckptkit
    from virnucpro_app.stages.store import RunCheckpoints

_EMBEDDINGS = (ShardStage.DNABERT, ShardStage.ESM)


@dataclass(frozen=True)
class ShardScores:
    """A finished shard's scores, in frame order.

    Attributes:
        index: 0-based shard number.
        scores: ``[N, 2]`` float32 (score1 = P(others), score2 = P(virus)).
    """

    index: int
    ids: list[str]
    scores: torch.Tensor


def _is_current(infos: dict[ShardStage, ckptkit.CheckpointInfo]) -> bool:
    """Whether every checkpoint was computed from the ones it depends on now."""
    frames = infos[ShardStage.FRAMES].metadata.get("digest")
    if frames is None:
        return False
    expected = {
        "frames": frames,
        **{str(kind): infos[kind].metadata.get("digest") for kind in _EMBEDDINGS},
    }
    return infos[ShardStage.SCORES].metadata.get("inputs") == expected and all(
        infos[kind].metadata.get("frames_digest") == frames for kind in _EMBEDDINGS
    )


def finished_scores(store: RunCheckpoints, index: int) -> ShardScores | None:
    """The scores of shard ``index`` if the shard is finished, else None.

    Every checkpoint of a finished shard is validated (in full unless
    ``--skip-checkpoint-validation``); a damaged one stops the run or, with
    ``--force-resume``, is set aside and the shard counts as unfinished.

    Raises:
        CheckpointProblemError: A damaged checkpoint without ``--force-resume``.
    """
    infos: dict[ShardStage, ckptkit.CheckpointInfo] = {}
    for stage in ShardStage:
        info = store.inspect_shard(index, stage)
        if info is None or info.status != "complete":
            return None
        infos[stage] = info
    if not _is_current(infos):
        return None
    for stage in (ShardStage.FRAMES, *_EMBEDDINGS):
        path = store.layout.shard_path(index, stage)
        if not store.verify(path, schema=stage.schema):
            return None
    checkpoint = store.reuse_shard(index, ShardStage.SCORES)
    if checkpoint is None:
        return None
    ids = list(checkpoint.state["ids"])
    if len(ids) != infos[ShardStage.FRAMES].metadata.get("frames"):
        store.reject(
            store.layout.shard_path(index, ShardStage.SCORES),
            "it holds another number of frames than the shard",
        )
        return None
    return ShardScores(index, ids, checkpoint.state["scores"])
