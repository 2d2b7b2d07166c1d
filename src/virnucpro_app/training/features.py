"""Merged embeddings of a labelled input set, through the stage library.

Each class of training input (virus, host) gets a folder laid out like a predict
run's output folder (``features/virus/``, ``features/host/``): a manifest of its
own (inputs, models, chunk size, precision, shard size), the prepared shards and
the per-shard DNABERT-S and ESM-2 checkpoints, written and reused by the same
stages as predict (``settle_manifest``, ``prepare_shards``, ``ShardRunner``,
``RunCheckpoints``), so a feature extraction killed at any moment resumes where
it stopped and reused checkpoints are validated, recorded in the ledger or
quarantined as in predict. There is no classifier stage: the merged features go
to the training loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from virnucpro_app.config import ExistingRun, ModelPaths, RunConfig, RunOptions
from virnucpro_app.records import RecordTally, write_records
from virnucpro_app.stages.embed import lazy_encoders
from virnucpro_app.stages.manifest import (
    ModelIdentities,
    RunManifest,
    build_manifest,
    settle_manifest,
)
from virnucpro_app.stages.prepare import prepare_shards
from virnucpro_app.stages.runner import ShardRunner
from virnucpro_app.stages.store import RunCheckpoints

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.layout import RunLayout

LOG = logging.getLogger("virnucpro_app")


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


class FeatureExtractor:
    """Runs prepare and both embedding stages for each class of training input.

    The two language models are loaded on first use and shared by both classes.

    Args:
        model_type: Chunk size in bp (300 or 500).
        models: DNABERT-S and ESM-2 locations (no classifier).
        options: The run's options, device and precision resolved.
        identities: The two models' content identities (hashed once per run).
    """

    def __init__(
        self,
        model_type: int,
        models: ModelPaths,
        options: RunOptions,
        identities: ModelIdentities,
    ) -> None:
        self.model_type, self.models, self.identities = model_type, models, identities
        # Every class folder is resumed when it holds a run: the training run
        # above it has already refused or cleared the whole checkpoint folder.
        self.options = replace(options, existing=ExistingRun.RESUME)
        self.encoders = lazy_encoders(models, options)

    def extract(
        self, label: str, inputs: tuple[Path, ...], layout: RunLayout
    ) -> ClassFeatures:
        """Reuse or compute the merged embeddings of ``inputs`` in ``layout``.

        Args:
            label: ``virus`` or ``host`` (for messages and the summary).
            inputs: The class's FASTA files.
            layout: Its features folder.

        Raises:
            InputError: An unreadable input.
            PipelineError: The stored manifest differs (inputs, models, settings).
            CheckpointProblemError: A damaged checkpoint without --force-resume.
        """
        started = time.perf_counter()
        config = RunConfig(
            inputs=inputs,
            output_dir=layout.output_dir,
            model_type=self.model_type,
            models=self.models,
            options=self.options,
        )
        store = RunCheckpoints(layout, self.options)
        manifest = build_manifest(config, self.identities)
        settle_manifest(manifest, store)
        prepared = prepare_shards(config, store)
        runner = ShardRunner(config, store, encoders=self.encoders, label=label)
        rows = [
            runner.features(prepared.shard(index))
            for index in range(prepared.num_shards)
        ]
        write_records(layout.records_report_path, prepared.records)
        if not self.options.keep_intermediate:
            prepared.remove_intermediates()
        features = torch.cat(rows) if rows else torch.zeros(0, 0)
        LOG.info(
            "%s features: %d frames from %d records, %d shards (%d frames embedded "
            "now by DNABERT-S, %d by ESM-2)",
            label,
            features.shape[0],
            len(prepared.records),
            prepared.num_shards,
            runner.computed["dnabert"],
            runner.computed["esm"],
        )
        return ClassFeatures(
            label=label,
            features=features,
            num_shards=prepared.num_shards,
            records=dict(RecordTally.of(prepared.records).counts),
            computed_frames=runner.computed,
            manifest=manifest,
            seconds=time.perf_counter() - started,
        )
