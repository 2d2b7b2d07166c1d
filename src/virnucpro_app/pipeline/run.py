"""run_predict: the whole predict job, resumable after any crash.

Order of work: settle the output folder (refuse, resume or start over); build
the manifest and compare it with a stored one; prepare (chunk + translate) into
shards of frames; per shard DNABERT-S, then ESM-2, then classification, each a
checkpoint; then the outputs, written from the checkpoints. Every checkpoint a
resumed run reuses is validated first (see :mod:`.store`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ckptkit.types import ExitCode
from virnucpro_app import __version__
from virnucpro_app.config import ExistingRun, PredictConfig
from virnucpro_app.errors import AppError, PipelineError
from virnucpro_app.layout import RunLayout
from virnucpro_app.models import EncoderKind
from virnucpro_app.pipeline.classify_stage import (
    SCORES_SCHEMA,
    classify_shard,
    merge_embeddings,
)
from virnucpro_app.pipeline.distributed import ProcessGroup, World, assign_shards
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


SHARD_STAGES = ("frames", "dnabert", "esm", "scores")
_STAGE_SCHEMAS = {
    "frames": "virnucpro.frames",
    "dnabert": "virnucpro.embeddings",
    "esm": "virnucpro.embeddings",
    "scores": "virnucpro.scores",
}


def is_shard_finished(layout: RunLayout, index: int, store: RunCheckpoints) -> bool:
    """True when every checkpoint of the shard is present, sound and complete.

    Each one is validated (a damaged one stops the run, or is quarantined with
    --force-resume, and the shard counts as unfinished).
    """
    for stage in SHARD_STAGES:
        checkpoint = store.reuse(
            layout.shard_path(index, stage), schema=_STAGE_SCHEMAS[stage]
        )
        if checkpoint is None or checkpoint.info.status != "complete":
            return False
    return True


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


def _attach_rank_log(layout: RunLayout, world: World) -> None:
    """Per-rank log file (and pid, for operators) under ``DIR/logs/``."""
    layout.logs_dir.mkdir(exist_ok=True)
    handler = logging.FileHandler(layout.rank_log_path(world.rank), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    layout.rank_pid_path(world.rank).write_text(f"{os.getpid()}\n")


@dataclass(frozen=True)
class _Plan:
    """Rank 0's word to every rank: how many shards and who computes which."""

    num_shards: int
    finished: int
    assignment: list[list[int]]


def _prepare_on_main(
    config: PredictConfig,
    manifest: RunManifest,
    layout: RunLayout,
    store: RunCheckpoints,
    world: World,
) -> tuple[PreparedRun, _Plan]:
    settle_output_dir(config, layout)
    _settle_manifest(layout, manifest, store)
    prepared = prepare_shards(config, layout, store)
    unfinished = [
        index
        for index in range(prepared.num_shards)
        if not is_shard_finished(layout, index, store)
    ]
    finished = prepared.num_shards - len(unfinished)
    LOG.info(
        "found %d/%d shard checkpoints valid, %d quarantined, recomputing %d",
        finished,
        prepared.num_shards,
        store.counts.quarantined,
        len(unfinished),
    )
    costs = [prepared.cost(i) for i in range(prepared.num_shards)]
    assignment = assign_shards(costs, unfinished, world.size)
    return prepared, _Plan(prepared.num_shards, finished, assignment)


def _agree_on_plan(
    config: PredictConfig,
    manifest: RunManifest,
    layout: RunLayout,
    store: RunCheckpoints,
    group: ProcessGroup,
) -> tuple[PreparedRun | None, _Plan]:
    """Rank 0 prepares and plans; the others learn the plan (or rank 0's error)."""
    world = group.world
    if world.is_main:
        try:
            prepared, plan = _prepare_on_main(config, manifest, layout, store, world)
        except AppError as error:
            group.broadcast(("error", str(error), int(error.exit_code)))
            raise
        except Exception as error:
            group.broadcast(("error", str(error), int(ExitCode.FAILURE)))
            raise
        group.broadcast(("ok", plan, 0))
        return prepared, plan
    message: tuple[str, Any, int] = group.broadcast(None)
    status, payload, code = message
    if status == "error":
        raise RankStoppedError(f"rank 0 stopped the run: {payload}", ExitCode(code))
    received: _Plan = payload
    return None, received


class RankStoppedError(PipelineError):
    """Rank 0 failed before the shards were handed out; every rank stops."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = code


def run_predict(
    config: PredictConfig,
    manifest: RunManifest,
    group: ProcessGroup | None = None,
) -> RunResult:
    """Run (or resume) a predict job and write its outputs.

    Args:
        config: The validated run settings.
        manifest: The identity of the run's results (inputs, models, settings).
        group: The torchrun process group (None: a single process).

    Returns:
        The exit code (0 or 2) and the run summary (rank 0; other ranks get
        an empty summary).

    Raises:
        PipelineError: Output folder in the way, manifest changed, models unfit.
        CheckpointProblemError: A damaged checkpoint without --force-resume.
    """
    started = time.perf_counter()
    group = group or ProcessGroup(World(), use_cuda=False)
    world = group.world
    layout = RunLayout(config.output_dir)
    store = RunCheckpoints(
        layout.checkpoints_dir,
        skip_validation=config.skip_checkpoint_validation,
        force_resume=config.force_resume,
        create=False,  # rank 0 creates it once the output folder is settled
    )
    prepared, plan = _agree_on_plan(config, manifest, layout, store, group)
    if world.is_distributed:
        _attach_rank_log(layout, world)
    if prepared is None:  # not rank 0: read what rank 0 prepared
        prepared = prepare_shards(config, layout, store, reuse_only=True)
    classifier = _load_checked_classifier(config)
    runner = _ShardRunner(config, layout, store)
    mine = plan.assignment[world.rank]
    if world.is_distributed:
        LOG.info("rank %d computes shards %s", world.rank, [i + 1 for i in mine])
    for index in mine:
        LOG.debug("rank %d: shard %d", world.rank, index + 1)
        runner.scores(prepared.shard(index), classifier)
    group.barrier()
    reports = group.gather(
        (sorted(runner.computed_shards), runner.computed, runner.seconds)
    )
    result = RunResult(ExitCode.OK)
    if world.is_main:
        result = _finish(
            config=config,
            manifest=manifest,
            layout=layout,
            store=store,
            prepared=prepared,
            reports=reports,
            started=started,
        )
    # Leave together: a rank tearing down its connections while another still
    # talks to it makes gloo abort.
    group.barrier()
    return result


def _finish(  # noqa: PLR0913 - the pieces of a finished run
    *,
    config: PredictConfig,
    manifest: RunManifest,
    layout: RunLayout,
    store: RunCheckpoints,
    prepared: PreparedRun,
    reports: list[tuple[list[int], dict[str, int], dict[str, float]]],
    started: float,
) -> RunResult:
    """Rank 0: write the outputs from every shard's scores, and the summary."""
    shard_scores = [
        (shard.ids, _stored_scores(layout, store, shard.index))
        for shard in prepared.shards()
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
    computed: dict[str, int] = {}
    seconds: dict[str, float] = {"prepare": prepared.seconds}
    for _, frames, stage_seconds in reports:
        for key, count in frames.items():
            computed[key] = computed.get(key, 0) + count
        for key, spent in stage_seconds.items():
            seconds[key] = seconds.get(key, 0.0) + spent
    summary = {
        "virnucpro_app_version": __version__,
        "inputs": [str(p) for p in config.inputs],
        "model_type": config.model_type,
        "manifest": manifest.to_json(),
        "device": config.device,
        "precision": manifest.precision,
        "demo_models": config.models.demo,
        "world_size": len(reports),
        "shards": prepared.num_shards,
        "frames": totals.frames,
        "chunks_scored": totals.chunks_scored,
        "chunks_virus": totals.chunks_virus,
        "records": totals.records,
        "computed_frames": computed,
        "computed_shards": sorted(i for shards, _, _ in reports for i in shards),
        "computed_shards_by_rank": [shards for shards, _, _ in reports],
        "stage_seconds": seconds,
        "checkpoints": {
            "reused_valid": store.counts.valid,
            "quarantined": store.counts.quarantined_paths,
        },
        "wall_seconds": time.perf_counter() - started,
        "exit_code": int(ExitCode.PARTIAL if partial else ExitCode.OK),
    }
    write_summary(layout.summary_path, summary)
    return RunResult(ExitCode.PARTIAL if partial else ExitCode.OK, summary)


def _stored_scores(
    layout: RunLayout, store: RunCheckpoints, index: int
) -> torch.Tensor:
    checkpoint = store.reuse(layout.shard_path(index, "scores"), schema=SCORES_SCHEMA)
    if checkpoint is None or checkpoint.info.status != "complete":
        raise PipelineError(
            f"shard {index + 1} has no scores after all ranks finished; "
            "rerun with --resume"
        )
    scores: torch.Tensor = checkpoint.state["scores"]
    return scores
