"""The settings of a run: options, models and the resolved job, each checked once.

:class:`RunOptions` holds the options ``predict``, ``train`` and ``embed`` share
(device, precision, batching, shards, what to do with an existing run,
validation, progress, log); the command line builds it once and the jobs carry it
whole. :class:`ModelRequest` is what the command line names as models;
:class:`RunConfig` is one run folder's resolved job, what the stage library
reads. What makes results reusable is a subset (see ``stages.manifest``): batch
size, device and worker counts are not part of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from virnucpro_app.device import plan_device
from virnucpro_app.errors import InputError, ModelLoadError, PipelineError
from virnucpro_app.layout import RunLayout
from virnucpro_app.records import DEFAULT_RECORD_THRESHOLD

if TYPE_CHECKING:
    from pathlib import Path

LOG = logging.getLogger("virnucpro_app")
#: Environment variables that set the model paths when the flags are absent.
ENV_DNABERT = "VIRNUCPRO_DNABERT"
ENV_ESM = "VIRNUCPRO_ESM"
ENV_CLASSIFIER = "VIRNUCPRO_CLASSIFIER"
#: Where ``--demo`` keeps the demo models it builds on first use.
ENV_DEMO_CACHE = "VIRNUCPRO_DEMO_CACHE"
#: Frames per shard (the unit of work and of checkpoints), as the original's files.
DEFAULT_SHARD_SIZE = 10_000
#: Sequences embedded between two in-progress checkpoints of a shard.
DEFAULT_SLICE_SIZE = 2_048
MODEL_TYPES = (300, 500)


class ExistingRun(StrEnum):
    """What to do with an output folder that already holds files."""

    REFUSE = "refuse"
    RESUME = "resume"
    FORCE = "force"

    @classmethod
    def from_flags(cls, *, resume: bool, force: bool) -> ExistingRun:
        """The choice ``--resume`` and ``--force`` make (neither: refuse).

        Raises:
            PipelineError: Both were given.

        Example:
            >>> ExistingRun.from_flags(resume=True, force=False)
            <ExistingRun.RESUME: 'resume'>
        """
        if resume and force:
            raise PipelineError("--resume and --force exclude each other: pick one")
        return cls.RESUME if resume else cls.FORCE if force else cls.REFUSE


@dataclass(frozen=True)
class RunOptions:
    """The options of a long-running command, built once from the command line.

    ``device`` and ``precision`` hold what was asked for until a job resolves
    them (:meth:`resolve_device`); the stages only ever see resolved values.

    Attributes:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (language models).
        tokens_per_batch: Token budget per language-model batch (None: default).
        shard_size: Frames per shard.
        slice_size: Frames embedded between two in-progress saves of a shard.
        existing: Refuse, resume or start over in a folder that holds a run.
        skip_checkpoint_validation: Header checks only when reusing checkpoints.
        force_resume: Quarantine damaged checkpoints and recompute their work.
        keep_intermediate: Keep the prepared FASTA files (chunks and frames).
        progress: Show progress bars.
        quiet: Log warnings and errors only.
        verbose: Log debug messages and show tracebacks.
        log_file: Also write the log here.

    Example:
        >>> RunOptions(quiet=True).log_level == logging.WARNING
        True
    """

    device: str = "auto"
    precision: str = "auto"
    tokens_per_batch: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    slice_size: int = DEFAULT_SLICE_SIZE
    existing: ExistingRun = ExistingRun.REFUSE
    skip_checkpoint_validation: bool = False
    force_resume: bool = False
    keep_intermediate: bool = False
    progress: bool = True
    quiet: bool = False
    verbose: bool = False
    log_file: Path | None = None

    def __post_init__(self) -> None:
        if self.shard_size < 1 or self.slice_size < 1:
            raise PipelineError("--shard-size must be at least 1")

    @property
    def log_level(self) -> int:
        """The console log level ``--quiet`` and ``--verbose`` pick."""
        if self.quiet:
            return logging.WARNING
        return logging.DEBUG if self.verbose else logging.INFO

    def resolve_device(self, *, log_prefix: str = "") -> RunOptions:
        """The same options with device and precision resolved on this machine.

        The choice (and why, when it is not the literal request) is logged.

        Raises:
            PipelineError: The device or precision cannot be used.
        """
        plan = plan_device(self.device, self.precision)
        note = f" ({plan.note})" if plan.note else ""
        LOG.info(
            "%sdevice %s, precision %s%s",
            log_prefix,
            plan.device,
            plan.precision.value,
            note,
        )
        return replace(self, device=plan.device, precision=plan.precision.value)


@dataclass(frozen=True)
class ModelPaths:
    """Where the three models come from.

    Attributes:
        dnabert: DNABERT-S Hugging Face style folder.
        esm: ESM-2 fair-esm ``.pt`` file or a model name.
        classifier: Classifier checkpoint (empty when a job needs none).
        demo: True when these are the random-weight demo models.
    """

    dnabert: str
    esm: str
    classifier: str
    demo: bool = False


@dataclass(frozen=True)
class ModelRequest:
    """The models a command line names, before anything is looked up.

    Attributes:
        dnabert: ``--dnabert`` (or its variable), if given.
        esm: ``--esm`` (or its variable), if given.
        classifier: ``--classifier`` (or its variable), if given.
        demo_dir: The demo model cache with ``--demo``, else None.
    """

    dnabert: str | None = None
    esm: str | None = None
    classifier: str | None = None
    demo_dir: Path | None = None

    def resolve(self, model_type: int, *, classifier: bool = True) -> ModelPaths:
        """The model locations; with ``--demo`` the ones named explicitly still win.

        Args:
            model_type: Chunk size (picks the demo classifier).
            classifier: Whether the job needs a classifier (``train`` makes one).

        Returns:
            The paths (the demo models are built in ``demo_dir`` on first use).

        Raises:
            ModelLoadError: A needed model is missing, naming its flag and variable.
        """
        if self.demo_dir is not None:
            from virnucpro_app.demo import demo_models

            demo = demo_models(self.demo_dir, model_type)
            return ModelPaths(
                dnabert=self.dnabert or demo.dnabert,
                esm=self.esm or demo.esm,
                classifier=(self.classifier or demo.classifier) if classifier else "",
                demo=True,
            )
        needed = [
            (self.dnabert, "--dnabert", ENV_DNABERT),
            (self.esm, "--esm", ENV_ESM),
        ]
        if classifier:
            needed.append((self.classifier, "--classifier", ENV_CLASSIFIER))
        missing = [f"{flag} (or ${env})" for value, flag, env in needed if not value]
        if missing:
            raise ModelLoadError(
                "no model given for " + ", ".join(missing) + "; pass them, or --demo "
                "to try the app with random-weight demo models"
            )
        return ModelPaths(
            dnabert=str(self.dnabert),
            esm=str(self.esm),
            classifier=str(self.classifier) if classifier else "",
        )


@dataclass(frozen=True)
class RunConfig:
    """One run folder's checked job: a predict run, or one class of training input.

    Attributes:
        inputs: FASTA files (plain or .gz), in order.
        output_dir: Where outputs and checkpoints go.
        model_type: Chunk size in bp (300 or 500); must match the classifier.
        options: The run's options, device and precision resolved.
        workers: Processes for sequence preparation.
        adopt_dir: ``--adopt``: a folder of legacy feature files to take
            features from (predict only).
        record_threshold: ``--record-threshold`` of the per-record verdict
            (predict only).
    """

    inputs: tuple[Path, ...]
    output_dir: Path
    model_type: int
    models: ModelPaths
    options: RunOptions = field(default_factory=RunOptions)
    workers: int = 1
    adopt_dir: Path | None = None
    record_threshold: float = DEFAULT_RECORD_THRESHOLD

    def __post_init__(self) -> None:
        check_model_type(self.model_type)
        if not self.inputs:
            raise InputError("no input FASTA files given")
        missing = [str(path) for path in self.inputs if not path.exists()]
        if missing:
            raise InputError(
                f"input file{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"{'do' if len(missing) > 1 else 'does'} not exist; check the "
                "input paths"
            )

    @property
    def layout(self) -> RunLayout:
        """The paths of the run folder."""
        return RunLayout(self.output_dir)


def check_model_type(model_type: int) -> None:
    """Refuse a chunk size no published model uses.

    Raises:
        PipelineError: ``model_type`` is not 300 or 500.
    """
    if model_type not in MODEL_TYPES:
        raise PipelineError(f"--model-type must be 300 or 500, not {model_type}")
