"""DNABERT-S and ESM-2 embeddings of one shard, saved as they are computed.

A shard is embedded slice by slice, in frame order; after each slice the
embeddings done so far are saved with status ``in_progress`` (so a kill inside a
long shard loses at most one slice) and the last save is ``complete``. A resumed
run continues after the saved prefix. Embeddings do not depend on what else is
in a batch, so resumed and uninterrupted runs give the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from virnucpro_app.layout import ShardStage
from virnucpro_app.models import EncoderKind, load_encoder
from virnucpro_app.stages.shards import tensor_digest

if TYPE_CHECKING:
    import ckptkit
    from virnucpro_app.config import ModelPaths, RunOptions
    from virnucpro_app.models import Encoder, ProgressCallback
    from virnucpro_app.stages.shards import ShardFrames
    from virnucpro_app.stages.store import RunCheckpoints

LOG = logging.getLogger("virnucpro_app")


@dataclass
class LazyEncoder:
    """Loads an encoder on first use, once per job (models move to the device once).

    Args:
        kind: ``dnabert`` or ``esm``.
        model: Path or name of the weights.
        options: The job's options: device, precision and ``tokens_per_batch``.
    """

    kind: EncoderKind
    model: str
    options: RunOptions
    loaded: Encoder | None = field(default=None, init=False)

    def get(self) -> Encoder:
        """The encoder, loaded now if it was not yet."""
        if self.loaded is None:
            self.loaded = load_encoder(
                self.kind,
                self.model,
                device=self.options.device,
                precision=self.options.precision,
            )
        return self.loaded


def lazy_encoders(
    models: ModelPaths, options: RunOptions
) -> dict[EncoderKind, LazyEncoder]:
    """Both encoders of a job, each loaded on first use, DNABERT-S first."""
    locations = {EncoderKind.DNABERT: models.dnabert, EncoderKind.ESM: models.esm}
    return {kind: LazyEncoder(kind, locations[kind], options) for kind in EncoderKind}


@dataclass(frozen=True)
class AdoptedRows:
    """Features of some of a shard's frames taken from legacy files (``--adopt``).

    Attributes:
        rows: 0-based rows of the shard, increasing.
        embeddings: ``[len(rows), D]`` float32, one row per entry of ``rows``.
    """

    rows: list[int]
    embeddings: torch.Tensor

    def within(self, start: int, end: int) -> dict[int, torch.Tensor]:
        """The adopted rows in ``[start, end)``, by row."""
        return {
            row: self.embeddings[position]
            for position, row in enumerate(self.rows)
            if start <= row < end
        }


#: Where a shard's adopted legacy features come from: ``(shard index, kind)`` ->
#: the rows, or None (see ``stages.adopt``).
AdoptedSource = Callable[[int, EncoderKind], AdoptedRows | None]


@dataclass(frozen=True)
class ShardEmbeddings:
    """One shard's embeddings by one encoder, and how they came about.

    Attributes:
        embeddings: ``[len(shard), D]`` float32.
        computed: Frames embedded in this run.
        digest: Content identity of ``embeddings`` (what scores record).
    """

    embeddings: torch.Tensor
    computed: int
    digest: str


def _resume_prefix(
    store: RunCheckpoints, shard: ShardFrames, stage: ShardStage
) -> tuple[ckptkit.Checkpoint | None, bool]:
    """The checkpoint of a prefix of the shard already saved, and whether complete.

    A checkpoint computed from other frames (its recorded frame digest differs:
    the frames were prepared again and came out different) is stale and simply
    recomputed; IDs that disagree with the very frames it records are damage.
    """
    checkpoint = store.reuse_shard(shard.index, stage)
    if checkpoint is None:
        return None, False
    path = store.layout.shard_path(shard.index, stage)
    recorded = checkpoint.info.metadata.get("frames_digest")
    if recorded is not None and recorded != shard.digest:
        LOG.info("%s was computed from other frames; recomputing it", path)
        return None, False
    ids = list(checkpoint.state["ids"])
    if ids != shard.ids[: len(ids)]:
        store.reject(path, "its frame IDs do not match the shard's frames")
        return None, False
    complete = checkpoint.info.status == "complete" and len(ids) == len(shard)
    return checkpoint, complete


def _embed_slice(
    shard: ShardFrames,
    encoder: LazyEncoder,
    span: tuple[int, int],
    adopted: dict[int, torch.Tensor],
    progress: ProgressCallback | None,
) -> tuple[torch.Tensor, int]:
    """Rows ``[start, end)`` of the shard: adopted ones taken, the rest computed."""
    start, end = span
    todo = [row for row in range(start, end) if row not in adopted]
    computed = None
    if todo:
        dnabert = encoder.kind is EncoderKind.DNABERT
        sequences = shard.nucleotides if dnabert else shard.proteins
        computed = encoder.get().embed(
            [shard.ids[row] for row in todo],
            [sequences[row] for row in todo],
            tokens_per_batch=encoder.options.tokens_per_batch,
            progress=progress,
        )
        if not adopted:
            return computed, len(todo)
    width = int(computed.shape[1]) if computed is not None else 0
    width = width or int(next(iter(adopted.values())).shape[0])
    rows = torch.empty(end - start, width, dtype=torch.float32)
    for row, values in adopted.items():
        rows[row - start] = values
    if computed is not None:
        rows[[row - start for row in todo]] = computed
    return rows, len(todo)


def embed_shard(
    shard: ShardFrames,
    encoder: LazyEncoder,
    store: RunCheckpoints,
    *,
    progress: ProgressCallback | None = None,
    adopted: AdoptedSource | None = None,
) -> ShardEmbeddings:
    """Embed one shard's frames, reusing and extending its checkpoint.

    Args:
        shard: The frames.
        encoder: The (lazily loaded) model; its kind names the checkpoint, its
            options ``tokens_per_batch`` (None: the model's default).
        store: The run folder's checkpoint rules; its options ``slice_size``
            (frames per in-progress save).
        progress: Called with (sequences, tokens) as batches finish.
        adopted: Gives the rows taken from legacy feature files instead of
            computed (called only when something is left to embed).

    Returns:
        The ``[len(shard), D]`` float32 embeddings, the frames computed now and
        their content identity.
    """
    stage = ShardStage(encoder.kind)
    checkpoint, complete = _resume_prefix(store, shard, stage)
    if checkpoint is not None:
        done: torch.Tensor = checkpoint.state["embeddings"]
        if complete:
            digest = checkpoint.info.metadata.get("digest") or tensor_digest(done)
            return ShardEmbeddings(done, 0, str(digest))
    parts = [] if checkpoint is None else [done]
    start = 0 if checkpoint is None else int(done.shape[0])
    computed = 0
    taken_rows = adopted(shard.index, encoder.kind) if adopted is not None else None
    metadata: dict[str, Any] = {
        "shard": shard.index + 1,
        "frames_digest": shard.digest,
        "adopted": 0 if taken_rows is None else len(taken_rows.rows),
    }
    while True:
        end = min(start + store.options.slice_size, len(shard))
        if end > start:  # (an in-progress save of every row only needs completing)
            taken = {} if taken_rows is None else taken_rows.within(start, end)
            rows, count = _embed_slice(shard, encoder, (start, end), taken, progress)
            parts = [torch.cat([*parts, rows])] if parts else [rows]
            computed += count
            if count and "model" not in metadata:
                metadata["model"] = encoder.get().info.to_metadata()
        status = "complete" if end == len(shard) else "in_progress"
        if status == "complete":
            metadata["digest"] = tensor_digest(parts[0])
        store.save_shard(
            shard.index,
            stage,
            {"ids": shard.ids[:end], "embeddings": parts[0]},
            status=status,
            metadata=metadata,
        )
        start = end
        if end == len(shard):
            return ShardEmbeddings(parts[0], computed, metadata["digest"])
