"""``run_summary.json``: what a predict run did, counted in files and frames.

Shards are numbered from 1, as in the checkpoint file names and the logs;
``reused_valid`` counts checkpoint files of earlier invocations that were
validated and reused (each once), so it is 0 on a fresh run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from virnucpro_app import __version__

if TYPE_CHECKING:
    from virnucpro_app.config import RunConfig
    from virnucpro_app.stages.adopt import AdoptionReport
    from virnucpro_app.stages.finished import ShardScores
    from virnucpro_app.stages.manifest import RunManifest
    from virnucpro_app.stages.outputs import OutputTotals
    from virnucpro_app.stages.prepare import PreparedRun
    from virnucpro_app.stages.runner import ShardRunner
    from virnucpro_app.stages.store import ReuseCounts


@dataclass
class MainState:
    """What rank 0 alone holds: the manifest, the account, the finished scores."""

    manifest: RunManifest
    prepared: PreparedRun
    finished: dict[int, ShardScores]
    adoption: AdoptionReport | None


@dataclass(frozen=True)
class RankReport:
    """What one rank did, gathered on rank 0.

    Attributes:
        shards: Shards (0-based) with anything computed now.
        frames: Frames embedded now, per encoder.
        seconds: Wall time per stage.
        reused: Checkpoint files of earlier invocations it validated and reused.
        quarantined: Where it set damaged checkpoints aside.
        error: ``(exit code, message)`` of the error that stopped it, if any.
    """

    shards: list[int]
    frames: dict[str, int]
    seconds: dict[str, float]
    reused: list[str]
    quarantined: list[str]
    error: tuple[int, str] | None = None

    @classmethod
    def of(
        cls,
        shards: list[int],
        runner: ShardRunner,
        counts: ReuseCounts,
        error: tuple[int, str] | None,
    ) -> RankReport:
        """The report of a rank's runner and checkpoint counts."""
        return cls(
            shards,
            dict(runner.computed),
            dict(runner.seconds),
            sorted(counts.reused),
            list(counts.quarantined_paths),
            error,
        )


def _sum(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def run_summary(
    config: RunConfig,
    main: MainState,
    totals: OutputTotals,
    reports: list[RankReport],
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    """The contents of ``run_summary.json``."""
    manifest, prepared = main.manifest, main.prepared
    computed = _sum([report.frames for report in reports])
    summary: dict[str, Any] = {
        "virnucpro_app_version": __version__,
        "inputs": [str(p) for p in config.inputs],
        "model_type": config.model_type,
        "manifest": manifest.to_json(),
        "device": config.options.device,
        "precision": manifest.precision,
        "demo_models": config.models.demo,
        "world_size": len(reports),
        "shards": prepared.num_shards,
        "frames": totals.frames,
        "chunks_scored": totals.chunks_scored,
        "chunks_virus": totals.chunks_virus,
        "records": totals.records,
        "record_threshold": config.record_threshold,
        "record_verdicts": totals.verdicts,
        "computed_frames": computed,
        "computed_shards": sorted(i + 1 for r in reports for i in r.shards),
        "computed_shards_by_rank": [[i + 1 for i in r.shards] for r in reports],
        "stage_seconds": {"prepare": prepared.seconds}
        | _sum([report.seconds for report in reports]),
        "checkpoints": {
            "reused_valid": len({path for r in reports for path in r.reused}),
            "quarantined": sorted({path for r in reports for path in r.quarantined}),
        },
        "wall_seconds": wall_seconds,
        "exit_code": int(prepared.exit_code),
    }
    if main.adoption is not None:
        summary["adoption"] = main.adoption.to_json(computed)
    return summary
