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
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ckptkit.types import ExitCode
from virnucpro_app import __version__
from virnucpro_app.errors import AppError, PipelineError
from virnucpro_app.layout import ShardStage
from virnucpro_app.predict.distributed import ProcessGroup, World, assign_shards
from virnucpro_app.stages.manifest import settle_manifest
from virnucpro_app.stages.outputs import write_outputs, write_summary
from virnucpro_app.stages.prepare import PreparedRun, prepare_shards
from virnucpro_app.stages.runner import ShardRunner
from virnucpro_app.stages.store import RunCheckpoints, settle_run_folder

if TYPE_CHECKING:
    import torch

    from virnucpro_app.config import RunConfig
    from virnucpro_app.layout import RunLayout
    from virnucpro_app.models.classifier import Classifier
    from virnucpro_app.stages.manifest import RunManifest

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


def settle_output_dir(config: RunConfig) -> None:
    """Refuse, resume in, or clear a non-empty output folder (never asks).

    Raises:
        PipelineError: The folder holds files and neither --resume nor --force.
    """
    layout = config.layout
    settle_run_folder(
        config.output_dir,
        layout.run_paths(),
        config.options.existing,
        flag="--output-dir",
        job="run",
    )
    layout.checkpoints_dir.mkdir(parents=True, exist_ok=True)


def _load_checked_classifier(config: RunConfig) -> Classifier:
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


@dataclass(frozen=True)
class _RankReport:
    """What one rank computed, gathered on rank 0 for the summary."""

    shards: list[int]
    frames: dict[str, int]
    seconds: dict[str, float]


@dataclass(frozen=True)
class _Job:
    """One predict run in this process: its config, manifest and checkpoints."""

    config: RunConfig
    manifest: RunManifest
    store: RunCheckpoints
    started: float

    @property
    def layout(self) -> RunLayout:
        return self.config.layout


def _prepare_on_main(job: _Job, world: World) -> tuple[PreparedRun, _Plan]:
    store = job.store
    settle_output_dir(job.config)
    settle_manifest(job.manifest, store)
    prepared = prepare_shards(job.config, store)
    unfinished = [
        index
        for index in range(prepared.num_shards)
        if not store.is_shard_finished(index)
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


def _agree_on_plan(job: _Job, group: ProcessGroup) -> tuple[PreparedRun | None, _Plan]:
    """Rank 0 prepares and plans; the others learn the plan (or rank 0's error)."""
    world = group.world
    if world.is_main:
        try:
            prepared, plan = _prepare_on_main(job, world)
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
    config: RunConfig,
    manifest: RunManifest,
    group: ProcessGroup | None = None,
) -> RunResult:
    """Run (or resume) a predict job and write its outputs.

    Args:
        config: The resolved run (device and precision resolved).
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
    # rank 0 creates checkpoints/ once the output folder is settled
    store = RunCheckpoints(config.layout, config.options, create=False)
    job = _Job(config, manifest, store, started)
    prepared, plan = _agree_on_plan(job, group)
    if world.is_distributed:
        _attach_rank_log(config.layout, world)
    if prepared is None:  # not rank 0: read what rank 0 prepared
        prepared = prepare_shards(config, store, reuse_only=True)
    classifier = _load_checked_classifier(config)
    runner = ShardRunner(config, store)
    mine = plan.assignment[world.rank]
    if world.is_distributed:
        LOG.info("rank %d computes shards %s", world.rank, [i + 1 for i in mine])
    for index in mine:
        LOG.debug("rank %d: shard %d", world.rank, index + 1)
        runner.scores(prepared.shard(index), classifier)
    group.barrier()
    reports = group.gather(
        _RankReport(sorted(runner.computed_shards), runner.computed, runner.seconds)
    )
    result = RunResult(ExitCode.OK)
    if world.is_main:
        result = _finish(job, prepared, reports)
    # Leave together: a rank tearing down its connections while another still
    # talks to it makes gloo abort.
    group.barrier()
    return result


def _finish(job: _Job, prepared: PreparedRun, reports: list[_RankReport]) -> RunResult:
    """Rank 0: write the outputs from every shard's scores, and the summary."""
    config, layout = job.config, job.layout
    shard_scores = [
        (shard.ids, _stored_scores(job.store, shard.index))
        for shard in prepared.shards()
    ]
    totals = write_outputs(
        layout,
        shards=shard_scores,
        records=prepared.records,
    )
    if not config.options.keep_intermediate:
        prepared.remove_intermediates()
    partial = any(row.status == "skipped" for row in prepared.records)
    computed: dict[str, int] = {}
    seconds: dict[str, float] = {"prepare": prepared.seconds}
    for report in reports:
        for key, count in report.frames.items():
            computed[key] = computed.get(key, 0) + count
        for key, spent in report.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + spent
    exit_code = ExitCode.PARTIAL if partial else ExitCode.OK
    summary = {
        "virnucpro_app_version": __version__,
        "inputs": [str(p) for p in config.inputs],
        "model_type": config.model_type,
        "manifest": job.manifest.to_json(),
        "device": config.options.device,
        "precision": job.manifest.precision,
        "demo_models": config.models.demo,
        "world_size": len(reports),
        "shards": prepared.num_shards,
        "frames": totals.frames,
        "chunks_scored": totals.chunks_scored,
        "chunks_virus": totals.chunks_virus,
        "records": totals.records,
        "computed_frames": computed,
        "computed_shards": sorted(i for report in reports for i in report.shards),
        "computed_shards_by_rank": [report.shards for report in reports],
        "stage_seconds": seconds,
        "checkpoints": {
            "reused_valid": job.store.counts.valid,
            "quarantined": job.store.counts.quarantined_paths,
        },
        "wall_seconds": time.perf_counter() - job.started,
        "exit_code": int(exit_code),
    }
    write_summary(layout.summary_path, summary)
    return RunResult(exit_code, summary)


def _stored_scores(store: RunCheckpoints, index: int) -> torch.Tensor:
    checkpoint = store.reuse_shard(index, ShardStage.SCORES)
    if checkpoint is None or checkpoint.info.status != "complete":
        raise PipelineError(
            f"shard {index + 1} has no scores after all ranks finished; "
            "rerun with --resume"
        )
    scores: torch.Tensor = checkpoint.state["scores"]
    return scores
