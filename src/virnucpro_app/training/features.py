"""Merged embeddings of a labelled input set, through predict's resumable stages.

Each class of training input (virus, host) gets a folder laid out like a predict
run's output folder (``features/virus/``, ``features/host/``): a manifest of its
own (inputs, models, chunk size, precision, shard size), the prepared shards and
the per-shard DNABERT-S and ESM-2 checkpoints, written and reused by the same
code as predict (``prepare_shards``, ``embed_shard``, ``RunCheckpoints``), so a
feature extraction killed at any moment resumes where it stopped and reused
checkpoints are validated, recorded in the ledger or quarantined as in predict.
There is no classifier stage: the merged features go to the training loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

import ckptkit
from virnucpro_app.config import ExistingRun, ModelPaths, PredictConfig
from virnucpro_app.models import EncoderKind
from virnucpro_app.pipeline.classify_stage import merge_embeddings
from virnucpro_app.pipeline.embed_stage import LazyEncoder, embed_shard
from virnucpro_app.pipeline.manifest import (
    RunManifest,
    check_resumable,
    read_manifest,
    write_manifest,
)
from virnucpro_app.pipeline.outputs import write_records
from virnucpro_app.pipeline.prepare_stage import prepare_shards
from virnucpro_app.pipeline.store import RunCheckpoints
from virnucpro_app.progress import throughput_progress

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.layout import RunLayout
    from virnucpro_app.pipeline.shards import ShardFrames

LOG = logging.getLogger("virnucpro_app")
#: Stands in the manifest's classifier field: feature runs use no classifier.
NO_CLASSIFIER = "none (training features)"


@dataclass(frozen=True)
class FeatureSettings:
    """How to compute features (shared by both classes of a training run).

    Attributes:
        models: DNABERT-S and ESM-2 locations (``classifier`` is unused).
        model_type: Chunk size in bp (300 or 500).
        device: Resolved compute device.
        precision: Resolved compute precision of the language models.
        tokens_per_batch: Token budget per batch (None: the model's default).
        shard_size: Frames per shard.
        slice_size: Frames between two in-progress saves of a shard.
        skip_checkpoint_validation: Header checks only when reusing checkpoints.
        force_resume: Quarantine damaged checkpoints and recompute their work.
        keep_intermediate: Keep the prepared FASTA files.
        progress: Show progress bars.
        dnabert_identity: Content identity of the DNABERT-S folder.
        esm_identity: Content identity of the ESM-2 file.
    """

    models: ModelPaths
    model_type: int
    device: str
    precision: str
    tokens_per_batch: int | None
    shard_size: int
    slice_size: int
    skip_checkpoint_validation: bool
    force_resume: bool
    keep_intermediate: bool
    progress: bool
    dnabert_identity: str
    esm_identity: str

    def manifest(self, inputs: tuple[tuple[str, str], ...]) -> RunManifest:
        """The manifest of one class's features folder."""
        return RunManifest(
            inputs=inputs,
            dnabert=self.dnabert_identity,
            esm=self.esm_identity,
            classifier=NO_CLASSIFIER,
            chunk_size=self.model_type,
            precision=self.precision,
            shard_size=self.shard_size,
        )


@dataclass(frozen=True)
class ClassFeatures:
    """The merged embeddings of one class of training input.

    Attributes:
        label: ``virus`` or ``host``.
        features: ``[frames, D]`` float32, frame order.
        num_shards: Shards of the features folder.
        records: Input records by status (``scored``: its frames were embedded).
        computed_frames: Frames embedded in this run, per model (0: all reused).
        manifest: The folder's manifest.
        seconds: Wall time spent on this class.
    """

    label: str
    features: torch.Tensor
    num_shards: int
    records: dict[str, int]
    computed_frames: dict[str, int]
    manifest: RunManifest
    seconds: float

    def summary(self) -> dict[str, object]:
        """The class's part of the training summary."""
        return {
            "frames": int(self.features.shape[0]),
            "shards": self.num_shards,
            "records": self.records,
            "computed_frames": self.computed_frames,
            "manifest": self.manifest.to_json(),
            "seconds": self.seconds,
        }


def _settle_manifest(
    layout: RunLayout, manifest: RunManifest, store: RunCheckpoints
) -> None:
    """Store the manifest, or check that the stored one is the same (as predict)."""
    path = layout.manifest_path
    if path.exists():
        try:
            stored = read_manifest(path)
        except ckptkit.CheckpointError as error:
            store.quarantine_all(path, error.reason)
        else:
            check_resumable(stored, manifest, path)
            return
    write_manifest(path, manifest)


@dataclass
class FeatureExtractor:
    """Runs prepare and both embedding stages for each class of training input.

    The two language models are loaded on first use and shared by both classes.

    Args:
        settings: What to compute and how.
    """

    settings: FeatureSettings
    encoders: dict[EncoderKind, LazyEncoder] = field(init=False)

    def __post_init__(self) -> None:
        models = self.settings.models
        self.encoders = {
            kind: LazyEncoder(
                kind, model, self.settings.device, self.settings.precision
            )
            for kind, model in (
                (EncoderKind.DNABERT, models.dnabert),
                (EncoderKind.ESM, models.esm),
            )
        }

    def extract(
        self, label: str, inputs: tuple[Path, ...], layout: RunLayout
    ) -> ClassFeatures:
        """Reuse or compute the merged embeddings of ``inputs`` in ``layout``.

        Args:
            label: ``virus`` or ``host`` (for messages and the summary).
            inputs: The class's FASTA files.
            layout: Its features folder.

        Returns:
            The features and their account.

        Raises:
            InputError: An unreadable input.
            PipelineError: The stored manifest differs (inputs, models, settings).
            CheckpointProblemError: A damaged checkpoint without --force-resume.
        """
        from virnucpro_app.identity import file_identity

        started = time.perf_counter()
        config = self._config(inputs, layout)
        store = RunCheckpoints(
            layout.checkpoints_dir,
            skip_validation=self.settings.skip_checkpoint_validation,
            force_resume=self.settings.force_resume,
        )
        manifest = self.settings.manifest(
            tuple((path.name, file_identity(path)) for path in inputs)
        )
        _settle_manifest(layout, manifest, store)
        prepared = prepare_shards(config, layout, store)
        computed = {kind.value: 0 for kind in self.encoders}
        rows = []
        for shard in prepared.shards():
            dnabert, esm = (
                self._embed(
                    shard,
                    kind,
                    label=label,
                    layout=layout,
                    store=store,
                    computed=computed,
                )
                for kind in (EncoderKind.DNABERT, EncoderKind.ESM)
            )
            width = int(dnabert.shape[1] + esm.shape[1])
            rows.append(merge_embeddings(shard, dnabert, esm, width))
        write_records(layout.records_report_path, prepared.records)
        if not self.settings.keep_intermediate:
            prepared.remove_intermediates()
        records: dict[str, int] = {}
        for row in prepared.records:
            records[row.status] = records.get(row.status, 0) + 1
        features = torch.cat(rows) if rows else torch.zeros(0, 0)
        LOG.info(
            "%s features: %d frames from %d records, %d shards (%d frames embedded "
            "now by DNABERT-S, %d by ESM-2)",
            label,
            features.shape[0],
            len(prepared.records),
            prepared.num_shards,
            computed["dnabert"],
            computed["esm"],
        )
        return ClassFeatures(
            label=label,
            features=features,
            num_shards=prepared.num_shards,
            records=records,
            computed_frames=computed,
            manifest=manifest,
            seconds=time.perf_counter() - started,
        )

    def _config(self, inputs: tuple[Path, ...], layout: RunLayout) -> PredictConfig:
        settings = self.settings
        return PredictConfig(
            inputs=inputs,
            output_dir=layout.output_dir,
            model_type=settings.model_type,
            models=settings.models,
            device=settings.device,
            precision=settings.precision,
            tokens_per_batch=settings.tokens_per_batch,
            shard_size=settings.shard_size,
            existing=ExistingRun.RESUME,
            skip_checkpoint_validation=settings.skip_checkpoint_validation,
            force_resume=settings.force_resume,
            keep_intermediate=settings.keep_intermediate,
            progress=settings.progress,
            slice_size=settings.slice_size,
        )

    def _embed(  # noqa: PLR0913 - one shard, one model, the run's bookkeeping
        self,
        shard: ShardFrames,
        kind: EncoderKind,
        *,
        label: str,
        layout: RunLayout,
        store: RunCheckpoints,
        computed: dict[str, int],
    ) -> torch.Tensor:
        with throughput_progress(
            f"{label} {kind.value} shard {shard.index + 1}",
            len(shard),
            enabled=self.settings.progress,
        ) as advance:
            embeddings, count = embed_shard(
                shard,
                kind=kind,
                encoder=self.encoders[kind],
                store=store,
                path=layout.shard_path(shard.index, kind.value),
                slice_size=self.settings.slice_size,
                tokens_per_batch=self.settings.tokens_per_batch,
                progress=advance,
            )
        computed[kind.value] += count
        return embeddings
