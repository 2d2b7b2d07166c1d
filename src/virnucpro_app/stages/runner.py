"""The one loop over a shard's stages, for predict and for training features.

A :class:`ShardRunner` belongs to one run folder: it embeds a shard with both
encoders (reusing and extending their checkpoints), merges the two embeddings,
and, for predict, scores them with the classifier; it counts the frames it
computed and the time each stage took.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from virnucpro_app.models import EncoderKind
from virnucpro_app.progress import throughput_progress
from virnucpro_app.stages.classify import classify_shard, merge_embeddings
from virnucpro_app.stages.embed import embed_shard, lazy_encoders

if TYPE_CHECKING:
    import torch

    from virnucpro_app.config import RunConfig
    from virnucpro_app.models.classifier import Classifier
    from virnucpro_app.stages.embed import AdoptedSource, LazyEncoder, ShardEmbeddings
    from virnucpro_app.stages.shards import ShardFrames
    from virnucpro_app.stages.store import RunCheckpoints


class ShardRunner:
    """Runs the per-shard stages of one run folder and counts what it computed.

    Args:
        encoders: Encoders to share with other folders (training's two classes);
            None loads the job's own on first use.
        label: Prefix of the progress bars (``virus``, ``host``).
        adopted: Legacy features taken instead of computed (``--adopt``).

    Attributes:
        computed: Frames embedded now (not reused), per encoder.
        computed_shards: Shards (0-based) with anything computed now.
        seconds: Wall time per stage (``dnabert``, ``esm``, ``classify``).
    """

    def __init__(
        self,
        config: RunConfig,
        store: RunCheckpoints,
        *,
        encoders: dict[EncoderKind, LazyEncoder] | None = None,
        label: str = "",
        adopted: AdoptedSource | None = None,
    ) -> None:
        self.options = config.options
        self.store = store
        self.encoders = encoders or lazy_encoders(config.models, config.options)
        self.prefix = f"{label} " if label else ""
        self.adopted = adopted
        self.computed: dict[str, int] = {kind.value: 0 for kind in EncoderKind}
        self.computed_shards: set[int] = set()
        self.seconds: dict[str, float] = {"dnabert": 0.0, "esm": 0.0, "classify": 0.0}

    def embed(self, shard: ShardFrames, kind: EncoderKind) -> ShardEmbeddings:
        """The shard's embeddings by one encoder (``[len(shard), D]`` float32)."""
        start = time.perf_counter()
        with throughput_progress(
            f"{self.prefix}{kind.value} shard {shard.index + 1}",
            len(shard),
            enabled=self.options.progress,
        ) as advance:
            result = embed_shard(
                shard,
                self.encoders[kind],
                self.store,
                progress=advance,
                adopted=self.adopted,
            )
        self.computed[kind.value] += result.computed
        if result.computed:
            self.computed_shards.add(shard.index)
        self.seconds[kind.value] += time.perf_counter() - start
        return result

    def features(self, shard: ShardFrames) -> torch.Tensor:
        """``cat(DNABERT-S, ESM-2)`` per frame.

        Raises:
            PipelineError: The embeddings do not fit the frames.
        """
        return self._features(shard, None)[0]

    def _features(
        self, shard: ShardFrames, expected_dim: int | None
    ) -> tuple[torch.Tensor, dict[str, str]]:
        dnabert = self.embed(shard, EncoderKind.DNABERT)
        esm = self.embed(shard, EncoderKind.ESM)
        merged = merge_embeddings(
            shard, dnabert.embeddings, esm.embeddings, expected_dim
        )
        inputs = {"frames": shard.digest, "dnabert": dnabert.digest, "esm": esm.digest}
        return merged, inputs

    def scores(self, shard: ShardFrames, classifier: Classifier) -> torch.Tensor:
        """The shard's ``[N, 2]`` scores, every stage before them reused or run."""
        features, inputs = self._features(shard, classifier.input_dim)
        start = time.perf_counter()
        scores, computed = classify_shard(
            shard, features, classifier, self.store, inputs
        )
        if computed:
            self.computed_shards.add(shard.index)
        self.seconds["classify"] += time.perf_counter() - start
        return scores
