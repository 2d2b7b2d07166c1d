"""run_predict: the whole predict job, resumable after any crash.

Order of work: settle the output folder (refuse, resume or start over); build
the manifest and compare it with a stored one; prepare (chunk + translate) into
shards of frames; per shard DNABERT-S, then ESM-2, then classification, each a
checkpoint; then the outputs, written from the checkpoints. Every checkpoint a
resumed run reuses is validated first (see :mod:`.store`).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ckptkit.types import ExitCode
from virnucpro_app import __version__
from virnucpro_app.config import ExistingRun, PredictConfig
from virnucpro_app.errors import PipelineError
from virnucpro_app.layout import RunLayout
from virnucpro_app.models import EncoderKind
from virnucpro_app.pipeline.classify_stage import classify_shard, merge_embeddings
from virnucpro_app.pipeline.embed_stage import LazyEncoder, embed_shard
from virnucpro_app.pipeline.manifest import (
    RunManifest,
    check_resumable,
    read_manifest,
    write_manifest,
)
from virnucpro_app.pipeline.outputs import write_outputs, write_summary
from virnucpro_app.pipeline.prepare_stage import PreparedRun, prepare_shards
from virnucpro_app.pipeline.store import RunCheckpoints
from virnucpro_app.progress import throughput_progress

if TYPE_CHECKING:
    import torch

    from virnucpro_app.models.classifier import Classifier
    from virnucpro_app.pipeline.shards import ShardFrames

LOG = logging.getLogger("virnucpro_app")


@dataclass
class RunResult:
    """How a run ended.

    Attributes:
        exit_code: 0 success, 2 partial (some records skipped).
        summary: The contents of ``run_summary.json``.
    """

    exit_code: ExitCode
    summary: dict[str, Any] = field(default_factory=dict)


def settle_output_dir(config: PredictConfig, layout: RunLayout) -> None:
    """Refuse, resume in, or clear a non-empty output folder (never asks).

    Raises:
        PipelineError: The folder holds files and neither --resume nor --force.
    """
    folder = config.output_dir
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"--output-dir {folder} is a file, not a folder")
    has_files = folder.exists() and any(folder.iterdir())
    if has_files and config.existing is ExistingRun.REFUSE:
        raise PipelineError(
            f"output folder {folder} is not empty: pass --resume to continue the "
            "run there, or --force to delete its files and start over"
        )
    if has_files and config.existing is ExistingRun.FORCE:
        for path in layout.run_paths():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    layout.checkpoints_dir.mkdir(parents=True, exist_ok=True)


def _settle_manifest(
    layout: RunLayout, manifest: RunManifest, store: RunCheckpoints
) -> None:
    path = layout.manifest_path
    if path.exists():
        import ckptkit

        try:
            stored = read_manifest(path)
        except ckptkit.CheckpointError as error:
            # Without a sound manifest nothing else here can be trusted either.
            store.quarantine_all(path, error.reason)
        else:
            check_resumable(stored, manifest, path)
            return
    write_manifest(path, manifest)


class _ShardRunner:
    """Runs the per-shard stages and counts what was reused and computed."""

    def __init__(self, config: PredictConfig, layout: RunLayout, store: RunCheckpoints):
        self.config = config
        self.layout = layout
        self.store = store
        self.encoders = {
            kind: LazyEncoder(kind, model, config.device, config.precision)
            for kind, model in (
                (EncoderKind.DNABERT, config.models.dnabert),
                (EncoderKind.ESM, config.models.esm),
            )
        }
        self.computed: dict[str, int] = {"dnabert": 0, "esm": 0}
        self.computed_shards: set[int] = set()
        self.seconds: dict[str, float] = {"dnabert": 0.0, "esm": 0.0, "classify": 0.0}

    def embed(self, shard: ShardFrames, kind: EncoderKind) -> torch.Tensor:
        start = time.perf_counter()
        with throughput_progress(
            f"{kind.value} shard {shard.index + 1}",
            len(shard),
            enabled=self.config.progress,
        ) as advance:
            embeddings, computed = embed_shard(
                shard,
                kind=kind,
                encoder=self.encoders[kind],
                store=self.store,
                path=self.layout.shard_path(shard.index, kind.value),
                slice_size=self.config.slice_size,
                tokens_per_batch=self.config.tokens_per_batch,
                progress=advance,
            )
        self.computed[kind.value] += computed
        if computed:
            self.computed_shards.add(shard.index)
        self.seconds[kind.value] += time.perf_counter() - start
        return embeddings

    def scores(self, shard: ShardFrames, classifier: Classifier) -> torch.Tensor:
        dnabert = self.embed(shard, EncoderKind.DNABERT)
        esm = self.embed(shard, EncoderKind.ESM)
        start = time.perf_counter()
        features = merge_embeddings(shard, dnabert, esm, classifier.input_dim)
        scores = classify_shard(
            shard,
            features,
            classifier=classifier,
            store=self.store,
            path=self.layout.shard_path(shard.index, "scores"),
        )
        self.seconds["classify"] += time.perf_counter() - start
        return scores


def count_finished_shards(
    layout: RunLayout, num_shards: int, store: RunCheckpoints
) -> int:
    """Shards whose final (scores) checkpoint is present and passes validation."""
    import ckptkit

    finished = 0
    for index in range(num_shards):
        path = layout.shard_path(index, "scores")
        if path.exists():
            report = ckptkit.validate(
                path, level="quick" if store.skip_validation else "full"
            )
            finished += int(report.ok)
    return finished


def _load_checked_classifier(config: PredictConfig) -> Classifier:
    from virnucpro_app.models.classifier import load_classifier

    classifier = load_classifier(config.models.classifier)
    if classifier.chunk_size is not None and classifier.chunk_size != config.model_type:
        raise PipelineError(
            f"{config.models.classifier} was trained on {classifier.chunk_size} bp "
            f"chunks but --model-type is {config.model_type}: pass --model-type "
            f"{classifier.chunk_size} or the {config.model_type} bp classifier"
        )
    return classifier


def run_predict(config: PredictConfig, manifest: RunManifest) -> RunResult:
    """Run (or resume) a predict job and write its outputs.

    Args:
        config: The validated run settings.
        manifest: The identity of the run's results (inputs, models, settings).

    Returns:
        The exit code (0 or 2) and the run summary.

    Raises:
        PipelineError: Output folder in the way, manifest changed, models unfit.
        CheckpointProblemError: A damaged checkpoint without --force-resume.
    """
    started = time.perf_counter()
    layout = RunLayout(config.output_dir)
    settle_output_dir(config, layout)
    store = RunCheckpoints(
        layout.checkpoints_dir,
        skip_validation=config.skip_checkpoint_validation,
        force_resume=config.force_resume,
    )
    _settle_manifest(layout, manifest, store)
    classifier = _load_checked_classifier(config)
    prepared: PreparedRun = prepare_shards(config, layout, store)
    runner = _ShardRunner(config, layout, store)
    finished = count_finished_shards(layout, prepared.num_shards, store)
    LOG.info(
        "found %d/%d shard checkpoints valid, %d quarantined, recomputing %d",
        finished,
        prepared.num_shards,
        store.counts.quarantined,
        prepared.num_shards - finished,
    )
    shard_scores = [
        (shard.ids, runner.scores(shard, classifier)) for shard in prepared.shards()
    ]
    totals = write_outputs(
        predictions_path=layout.predictions_path,
        consensus_path=layout.consensus_path,
        records_path=layout.records_report_path,
        shards=shard_scores,
        records=prepared.records,
    )
    if not config.keep_intermediate:
        prepared.remove_intermediates()
    partial = any(row.status == "skipped" for row in prepared.records)
    summary = {
        "virnucpro_app_version": __version__,
        "inputs": [str(p) for p in config.inputs],
        "model_type": config.model_type,
        "manifest": manifest.to_json(),
        "device": config.device,
        "precision": manifest.precision,
        "demo_models": config.models.demo,
        "shards": prepared.num_shards,
        "frames": totals.frames,
        "chunks_scored": totals.chunks_scored,
        "chunks_virus": totals.chunks_virus,
        "records": totals.records,
        "computed_frames": runner.computed,
        "computed_shards": sorted(runner.computed_shards),
        "stage_seconds": {"prepare": prepared.seconds, **runner.seconds},
        "checkpoints": {
            "reused_valid": store.counts.valid,
            "quarantined": store.counts.quarantined_paths,
        },
        "wall_seconds": time.perf_counter() - started,
        "exit_code": int(ExitCode.PARTIAL if partial else ExitCode.OK),
    }
    write_summary(layout.summary_path, summary)
    return RunResult(ExitCode.PARTIAL if partial else ExitCode.OK, summary)
