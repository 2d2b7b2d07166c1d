"""run_predict: the whole predict job, resumable after any crash.

Order of work (rank 0 alone until the plan): check the inputs and models
(nothing is written before they pass); settle the output folder (refuse, resume
or start over) and the manifest; prepare (chunk + translate) into shards of
frames; take legacy features with ``--adopt``; find the finished shards (each of
their checkpoints validated, only their scores kept); then every rank computes
its share of the rest, per shard DNABERT-S, ESM-2 and the classifier, each a
checkpoint; rank 0 writes the outputs. Every checkpoint is read at most once
(see :mod:`virnucpro_app.stages.finished`).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ckptkit
from ckptkit.types import ExitCode
from virnucpro_app import runlog
from virnucpro_app.errors import AppError, PipelineError
from virnucpro_app.layout import ShardStage
from virnucpro_app.predict.distributed import ProcessGroup, World, assign_shards
from virnucpro_app.predict.summary import MainState, RankReport, run_summary
from virnucpro_app.stages.finished import ShardScores, finished_scores
from virnucpro_app.stages.outputs import write_outputs, write_summary
from virnucpro_app.stages.prepare import PreparedRun, prepare_shards
from virnucpro_app.stages.runner import ShardRunner
from virnucpro_app.stages.store import RunCheckpoints, RunFolder, settle_run_folder

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from virnucpro_app.config import RunConfig
    from virnucpro_app.layout import RunLayout

LOG = logging.getLogger("virnucpro_app")


@dataclass
class RunResult:
    """How a run ended.

    Attributes:
        exit_code: 0 success, 2 partial (some records skipped).
        summary: The contents of ``run_summary.json`` (rank 0; empty elsewhere).
    """

    exit_code: ExitCode
    summary: dict[str, Any] = field(default_factory=dict)


def settle_output_dir(config: RunConfig) -> None:
    """Refuse, resume in, or clear a non-empty output folder (never asks).

    Raises:
        PipelineError: The folder holds files and neither --resume nor --force.
    """
    layout = config.layout
    folder = RunFolder(
        config.output_dir,
        layout.run_paths(),
        flag="--output-dir",
        job="run",
        started=layout.has_started(),
    )
    settle_run_folder(folder, config.options.existing)
    layout.checkpoints_dir.mkdir(parents=True, exist_ok=True)


def _attach_logs(layout: RunLayout, world: World) -> None:
    """The run's log files: the main log, and per rank its own (and pid)."""
    if not world.is_distributed:
        runlog.attach(layout.log_path)
        return
    runlog.attach(layout.log_path, layout.rank_log_path(world.rank), rank=world.rank)
    layout.rank_pid_path(world.rank).write_text(f"{os.getpid()}\n")


@dataclass(frozen=True)
class _Plan:
    """Rank 0's word to every rank: the shards and who computes which.

    ``fresh``: the checkpoints rank 0 wrote in this invocation (prepared
    frames, adopted features), which no rank counts as reused.
    """

    num_shards: int
    shard_costs: list[int]
    assignment: list[list[int]]
    fresh: list[str]
    adopted: bool


def _prepare_on_main(
    config: RunConfig, store: RunCheckpoints, world: World
) -> tuple[MainState, _Plan]:
    from virnucpro_app.alphabet import SequenceKind, check_inputs
    from virnucpro_app.legacy_features import find_legacy_files
    from virnucpro_app.stages import adopt
    from virnucpro_app.stages.manifest import (
        ModelIdentities,
        build_manifest,
        settle_manifest,
    )
    from virnucpro_app.stages.preflight import check_models

    # Inputs and models are checked before the output folder is touched.
    check_inputs(config.inputs, SequenceKind.NUCLEOTIDE)
    check_models(config.models, config.model_type)
    legacy = find_legacy_files(config.adopt_dir) if config.adopt_dir else ()
    manifest = build_manifest(
        config,
        ModelIdentities.of(config.models),
        adopted=tuple((item.name, item.identity) for item in legacy),
    )
    settle_output_dir(config)
    _attach_logs(config.layout, world)
    settle_manifest(manifest, store)
    pending = bool(legacy) and adopt.is_pending(store)
    prepared = prepare_shards(config, store, collect_ids=pending)
    adoption = adopt.adopt_features(config, store, legacy, prepared) if legacy else None
    finished = {
        index: scores
        for index in range(prepared.num_shards)
        if (scores := finished_scores(store, index)) is not None
    }
    unfinished = [i for i in range(prepared.num_shards) if i not in finished]
    LOG.info(
        "found %d/%d shard checkpoints valid, %d quarantined, recomputing %d",
        len(finished),
        prepared.num_shards,
        store.counts.quarantined,
        len(unfinished),
    )
    costs = [prepared.cost(i) for i in range(prepared.num_shards)]
    plan = _Plan(
        prepared.num_shards,
        costs,
        assign_shards(costs, unfinished, world.size),
        sorted(str(path) for path in store.written),
        adoption is not None and adoption.num_adopted > 0,
    )
    return MainState(manifest, prepared, finished, adoption), plan


class RankStoppedError(PipelineError):
    """The job stops on every rank with one rank's error; rank 0 says why."""

    def __init__(self, message: str, code: ExitCode, *, quiet: bool) -> None:
        super().__init__(message)
        self.exit_code = code
        self.quiet = quiet


def _agree_on_plan(
    config: RunConfig, store: RunCheckpoints, group: ProcessGroup
) -> tuple[MainState | None, _Plan]:
    """Rank 0 prepares and plans; the others learn the plan (or rank 0's error)."""
    if group.world.is_main:
        try:
            main, plan = _prepare_on_main(config, store, group.world)
        except Exception as error:
            group.broadcast(("error", str(error), _code_of(error)))
            raise
        group.broadcast(("ok", plan, 0))
        return main, plan
    message: tuple[str, Any, int] = group.broadcast(None)
    status, payload, code = message
    if status == "error":
        raise RankStoppedError(payload, ExitCode(code), quiet=True)
    received: _Plan = payload
    return None, received


def _code_of(error: BaseException) -> int:
    if isinstance(error, AppError):
        return int(error.exit_code)
    code = ckptkit.exit_code_for(error)
    return int(code if code is not None else ExitCode.FAILURE)


@dataclass
class _Work:
    """One rank's share: the scores it keeps (rank 0) and any error it met."""

    kept: dict[int, ShardScores] = field(default_factory=dict)
    error: tuple[int, str] | None = None


def _compute(
    config: RunConfig,
    prepared: PreparedRun,
    runner: ShardRunner,
    mine: list[int],
    world: World,
) -> _Work:
    """Score this rank's shards; under torchrun an error is kept, not raised."""
    from virnucpro_app.models.classifier import load_classifier

    work = _Work()
    if world.is_distributed:
        LOG.info("rank %d computes shards %s", world.rank, [i + 1 for i in mine])
    try:
        # Its chunk size was checked against --model-type before anything ran.
        classifier = load_classifier(config.models.classifier)
        for index in mine:
            LOG.debug("rank %d: shard %d", world.rank, index + 1)
            shard = prepared.shard(index)
            scores = runner.scores(shard, classifier)
            if world.is_main:
                work.kept[index] = ShardScores(index, shard.ids, scores)
    except (AppError, ckptkit.CheckpointError) as error:
        if not world.is_distributed:
            raise
        # Every rank must reach the exchange of results, or the others wait.
        LOG.debug("stopping: %s", error, exc_info=True)
        work.error = (_code_of(error), str(error))
    return work


def _stop_on_errors(reports: list[RankReport], world: World) -> None:
    """Every rank stops with the first failing rank's code; rank 0 prints why."""
    failures = [(rank, r.error) for rank, r in enumerate(reports) if r.error]
    if not failures:
        return
    rank, (code, message) = failures[0]
    text = message if rank == 0 else f"rank {rank}: {message}"
    raise RankStoppedError(text, ExitCode(code), quiet=not world.is_main)


def run_predict(config: RunConfig, group: ProcessGroup | None = None) -> RunResult:
    """Run (or resume) a predict job and write its outputs.

    Args:
        config: The resolved run (device and precision resolved).
        group: The torchrun process group (None: a single process).

    Returns:
        The exit code (0 or 2, the same on every rank) and the run summary
        (rank 0; other ranks get an empty summary).

    Raises:
        InputError: Inputs missing, not FASTA, empty, or protein.
        ModelLoadError: Models missing, of the wrong kind, or not fitting.
        PipelineError: Output folder in the way, manifest changed.
        CheckpointProblemError: A damaged checkpoint without --force-resume.
    """
    started = time.perf_counter()
    group = group or ProcessGroup(World(), use_cuda=False)
    world = group.world
    # rank 0 creates checkpoints/ once the output folder is settled
    store = RunCheckpoints(config.layout, config.options, create=False)
    main, plan = _agree_on_plan(config, store, group)
    if main is None:
        _attach_logs(config.layout, world)
        prepared = PreparedRun(
            config, store, plan.num_shards, [], shard_costs=plan.shard_costs
        )
    else:
        prepared = main.prepared
    for path in plan.fresh:  # rank 0 wrote them now: no rank counts them as reused
        store.mark_fresh(Path(path))
    adopted = None
    if plan.adopted:
        from virnucpro_app.stages.adopt import adopted_rows

        adopted = functools.partial(adopted_rows, store)
    runner = ShardRunner(config, store, adopted=adopted)
    work = _compute(config, prepared, runner, plan.assignment[world.rank], world)
    shards = sorted(runner.computed_shards | prepared.regenerated)
    reports = group.gather(RankReport.of(shards, runner, store.counts, work.error))
    _stop_on_errors(reports, world)
    result = RunResult(ExitCode.OK)
    if main is not None:
        main.finished.update(work.kept)  # the shards this rank computed now
        result = _finish(config, store, main, reports, started)
    code: int = group.broadcast(int(result.exit_code) if world.is_main else None)
    # Leave together: a rank tearing down its connections while another still
    # talks to it makes gloo abort.
    group.barrier()
    return RunResult(ExitCode(code), result.summary)


def _finish(
    config: RunConfig,
    store: RunCheckpoints,
    main: MainState,
    reports: list[RankReport],
    started: float,
) -> RunResult:
    """Rank 0: write the outputs from every shard's scores, and the summary."""
    prepared = main.prepared

    def shard_scores() -> Iterator[tuple[list[str], torch.Tensor]]:
        for index in range(prepared.num_shards):
            found = main.finished.pop(index, None)
            if found is None:  # computed by another rank
                found = _read_scores(store, index)
            yield found.ids, found.scores

    totals = write_outputs(
        config.layout,
        shards=shard_scores(),
        records=prepared.records,
        record_threshold=config.record_threshold,
    )
    if not config.options.keep_intermediate:
        prepared.remove_intermediates()
    summary = run_summary(
        config, main, totals, reports, wall_seconds=time.perf_counter() - started
    )
    write_summary(config.layout.summary_path, summary)
    LOG.info("results in %s (exit code %d)", config.output_dir, prepared.exit_code)
    return RunResult(prepared.exit_code, summary)


def _read_scores(store: RunCheckpoints, index: int) -> ShardScores:
    path = store.layout.shard_path(index, ShardStage.SCORES)
    store.mark_fresh(path)  # written in this run by another rank
    checkpoint = store.reuse_shard(index, ShardStage.SCORES)
    if checkpoint is None or checkpoint.info.status != "complete":
        raise PipelineError(
            f"shard {index + 1} has no scores after all ranks finished; "
            "rerun with --resume"
        )
    return ShardScores(index, list(checkpoint.state["ids"]), checkpoint.state["scores"])
