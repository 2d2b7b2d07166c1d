"""Reusing a run's checkpoints safely: validate, record failures, quarantine.

Every checkpoint a resumed run would reuse passes through :class:`RunCheckpoints`:
it is validated (full checksums; header checks only with
``--skip-checkpoint-validation``); a bad one is recorded in the run's failure
ledger and either stops the run (exit 3, naming the file and ``--force-resume``)
or, with ``--force-resume``, is moved aside (kept, renamed as quarantined) so
that its work is recomputed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ckptkit
from ckptkit.types import ExitCode
from virnucpro_app.config import ExistingRun
from virnucpro_app.errors import AppError, PipelineError
from virnucpro_app.layout import ShardStage

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from virnucpro_app.config import RunOptions
    from virnucpro_app.layout import RunLayout

QUARANTINE_MARK = ".quarantined-"


def quarantine_name(path: Path) -> Path:
    """Where a damaged file or folder is set aside: ``{name}.quarantined-{time}``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return path.with_name(f"{path.name}{QUARANTINE_MARK}{stamp}")


def settle_run_folder(
    folder: Path,
    run_paths: Iterable[Path],
    existing: ExistingRun,
    *,
    flag: str,
    job: str,
) -> None:
    """Refuse, resume in, or clear a folder that holds a run (never asks).

    Args:
        folder: The run folder, named on the command line by ``flag``.
        run_paths: What the job writes (what ``--force`` deletes).
        existing: What the command line chose.
        flag: ``--output-dir`` or ``--checkpoint-dir``.
        job: What continues there with ``--resume`` (``run``, ``training``).

    Raises:
        PipelineError: ``folder`` is a file, or holds files and neither
            ``--resume`` nor ``--force`` was given.
    """
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"{flag} {folder} is a file, not a folder")
    if existing is ExistingRun.REFUSE and folder.exists() and any(folder.iterdir()):
        what = flag.removeprefix("--").removesuffix("-dir")
        raise PipelineError(
            f"{what} folder {folder} is not empty: pass --resume to continue the "
            f"{job} there, or --force to delete its files and start over"
        )
    if existing is ExistingRun.FORCE:
        for path in run_paths:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


class CheckpointProblemError(AppError):
    """A checkpoint the run would reuse is damaged or incompatible (exit 3)."""

    exit_code = ExitCode.CHECKPOINT


@dataclass
class ReuseCounts:
    """What happened to existing checkpoints during one run."""

    valid: int = 0
    quarantined: int = 0
    quarantined_paths: list[str] = field(default_factory=list)


@dataclass
class RunCheckpoints:
    """Loads and saves one run folder's checkpoints under its rules.

    Args:
        layout: The run folder (its ``checkpoints/`` holds the ledger too).
        options: ``skip_checkpoint_validation`` (quick header checks only on
            reuse) and ``force_resume`` (quarantine bad checkpoints and
            recompute instead of stopping).
        create: Create ``checkpoints/`` now (predict's rank 0 does it later,
            once the output folder is settled).
    """

    layout: RunLayout
    options: RunOptions
    create: bool = True
    counts: ReuseCounts = field(default_factory=ReuseCounts)

    def __post_init__(self) -> None:
        if self.create:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.ledger = ckptkit.FailureLedger(self.directory)

    @property
    def directory(self) -> Path:
        """The run's ``checkpoints/`` folder."""
        return self.layout.checkpoints_dir

    def reuse_shard(self, index: int, stage: ShardStage) -> ckptkit.Checkpoint | None:
        """:meth:`reuse` of shard ``index``'s checkpoint of ``stage``."""
        return self.reuse(self.layout.shard_path(index, stage), schema=stage.schema)

    def is_shard_finished(self, index: int) -> bool:
        """True when every checkpoint of the shard is present, sound and complete.

        Each one is validated (a damaged one stops the run, or is quarantined
        with --force-resume, and the shard counts as unfinished).
        """
        for stage in ShardStage:
            checkpoint = self.reuse_shard(index, stage)
            if checkpoint is None or checkpoint.info.status != "complete":
                return False
        return True

    def reuse(self, path: Path, *, schema: str) -> ckptkit.Checkpoint | None:
        """Load ``path`` if it exists and is sound; None means "compute it".

        Raises:
            CheckpointProblemError: The file is damaged or incompatible and
                ``--force-resume`` is off (the failure is in the ledger first).
        """
        if not path.exists():
            return None
        try:
            quick = self.options.skip_checkpoint_validation
            checkpoint = ckptkit.load(path, verify="quick" if quick else "full")
            if checkpoint.info.legacy or checkpoint.info.schema != schema:
                reason = (
                    f"schema {checkpoint.info.schema!r} (version "
                    f"{checkpoint.info.version}) where {schema!r} was expected"
                )
                raise ckptkit.SchemaMismatchError(path, reason)
        except (ckptkit.CheckpointError, KeyError) as error:
            self._bad(path, getattr(error, "reason", str(error)))
            return None
        self.counts.valid += 1
        return checkpoint

    def reject(self, path: Path, reason: str) -> None:
        """Treat a checkpoint that loaded but cannot be right as damaged.

        Raises:
            CheckpointProblemError: Unless ``--force-resume`` (then it is
                quarantined).
        """
        self.counts.valid -= 1
        self._bad(path, reason)

    def quarantine_all(self, manifest: Path, reason: str) -> None:
        """A damaged manifest: set every checkpoint aside (with --force-resume).

        Raises:
            CheckpointProblemError: Without ``--force-resume``.
        """
        self._bad(manifest, reason)
        for path in sorted(self.directory.glob("*.ckpt")):
            self._bad(
                path, "the run manifest was damaged; its results cannot be trusted"
            )

    def _bad(self, path: Path, reason: str) -> None:
        self.ledger.record(path, reason)
        if not self.options.force_resume:
            raise CheckpointProblemError(
                f"{path}: {reason}. It is recorded in "
                f"{self.ledger.path}. Rerun with --force-resume to set it aside "
                "(it is kept, renamed as quarantined) and recompute its work, or "
                "restore the file"
            )
        target = quarantine_name(path)
        path.rename(target)
        self.ledger.record(path, f"quarantined as {target.name}; recomputing")
        self.counts.quarantined += 1
        self.counts.quarantined_paths.append(str(target))

    def save(
        self,
        path: Path,
        state: Any,
        *,
        schema: str,
        status: str = "complete",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Write a stage checkpoint atomically and durably."""
        ckptkit.save(path, state, schema=schema, status=status, metadata=metadata)

    def save_shard(
        self, index: int, stage: ShardStage, state: Any, **header: Any
    ) -> None:
        """:meth:`save` shard ``index``'s checkpoint of ``stage``.

        ``header``: ``status`` and ``metadata``, as for :meth:`save`.
        """
        path = self.layout.shard_path(index, stage)
        self.save(path, state, schema=stage.schema, **header)
