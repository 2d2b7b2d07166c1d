"""DNABERT-S and ESM-2 embeddings of one shard, saved as they are computed.

A shard is embedded slice by slice, in frame order; after each slice the
embeddings done so far are saved with status ``in_progress`` (so a kill inside a
long shard loses at most one slice) and the last save is ``complete``. A resumed
run continues after the saved prefix. Embeddings do not depend on what else is
in a batch, so resumed and uninterrupted runs give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from virnucpro_app.layout import ShardStage
from virnucpro_app.models import EncoderKind, load_encoder

if TYPE_CHECKING:
    from virnucpro_app.config import ModelPaths, RunOptions
    from virnucpro_app.models import Encoder, ProgressCallback
    from virnucpro_app.stages.shards import ShardFrames
    from virnucpro_app.stages.store import RunCheckpoints


@dataclass
class LazyEncoder:
    """Loads an encoder on first use, once per job (models move to the device once).

    Args:
        kind: ``dnabert`` or ``esm``.
        model: Path or name of the weights.
        device: Requested device.
        precision: Requested precision.
    """

    kind: EncoderKind
    model: str
    device: str
    precision: str
    loaded: Encoder | None = field(default=None, init=False)

    def get(self) -> Encoder:
        """The encoder, loaded now if it was not yet."""
        if self.loaded is None:
            self.loaded = load_encoder(
                self.kind, self.model, device=self.device, precision=self.precision
            )
        return self.loaded


def lazy_encoders(
    models: ModelPaths, options: RunOptions
) -> dict[EncoderKind, LazyEncoder]:
    """Both encoders of a job, each loaded on first use, DNABERT-S first."""
    locations = {EncoderKind.DNABERT: models.dnabert, EncoderKind.ESM: models.esm}
    return {
        kind: LazyEncoder(kind, locations[kind], options.device, options.precision)
        for kind in EncoderKind
    }


def _inputs(shard: ShardFrames, kind: EncoderKind) -> list[str]:
    return shard.nucleotides if kind is EncoderKind.DNABERT else shard.proteins


def _resume_prefix(
    store: RunCheckpoints, shard: ShardFrames, stage: ShardStage
) -> tuple[torch.Tensor | None, bool]:
    """Embeddings already saved for a prefix of the shard, and whether complete."""
    checkpoint = store.reuse_shard(shard.index, stage)
    if checkpoint is None:
        return None, False
    ids = list(checkpoint.state["ids"])
    if ids != shard.ids[: len(ids)]:
        # Same manifest but other frames cannot happen; treat as damage.
        path = store.layout.shard_path(shard.index, stage)
        store.reject(path, "its frame IDs do not match the shard's frames")
        return None, False
    complete = checkpoint.info.status == "complete" and len(ids) == len(shard)
    return checkpoint.state["embeddings"], complete


def embed_shard(
    shard: ShardFrames,
    encoder: LazyEncoder,
    store: RunCheckpoints,
    options: RunOptions,
    progress: ProgressCallback | None = None,
) -> tuple[torch.Tensor, int]:
    """Embed one shard's frames, reusing and extending its checkpoint.

    Args:
        shard: The frames.
        encoder: The (lazily loaded) model; its kind names the checkpoint.
        store: The run folder's checkpoint rules.
        options: ``slice_size`` (frames per in-progress save) and
            ``tokens_per_batch`` (None: the model's default).
        progress: Called with (sequences, tokens) as batches finish.

    Returns:
        ``([len(shard), D] float32, frames computed now)``.
    """
    stage = ShardStage(encoder.kind)
    done, complete = _resume_prefix(store, shard, stage)
    if complete and done is not None:
        return done, 0
    sequences = _inputs(shard, encoder.kind)
    parts = [] if done is None else [done]
    start = 0 if done is None else int(done.shape[0])
    computed = 0
    metadata: dict[str, Any] | None = None
    while start < len(shard) or not parts:
        end = min(start + options.slice_size, len(shard))
        model = encoder.get()
        parts.append(
            model.embed(
                shard.ids[start:end],
                sequences[start:end],
                tokens_per_batch=options.tokens_per_batch,
                progress=progress,
            )
        )
        computed += end - start
        embeddings = torch.cat(parts) if len(parts) > 1 else parts[0]
        parts = [embeddings]
        metadata = metadata or {"model": model.info.to_metadata(), "shard": shard.index}
        store.save_shard(
            shard.index,
            stage,
            {"ids": shard.ids[:end], "embeddings": embeddings},
            status="complete" if end == len(shard) else "in_progress",
            metadata=metadata,
        )
        start = end
        if end == len(shard):
            break
    return parts[0], computed
