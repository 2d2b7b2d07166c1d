"""PredictConfig: every choice of a predict run, checked once.

The command line (and the environment variables below) fill it; the pipeline
only reads it. What makes results reusable is a subset (see
``pipeline.manifest``): batch size, device and worker counts are not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from virnucpro_app.errors import InputError, PipelineError

if TYPE_CHECKING:
    from pathlib import Path

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


@dataclass(frozen=True)
class ModelPaths:
    """Where the three models come from.

    Attributes:
        dnabert: DNABERT-S Hugging Face style folder.
        esm: ESM-2 fair-esm ``.pt`` file or a model name.
        classifier: Classifier checkpoint.
        demo: True when these are the random-weight demo models.
    """

    dnabert: str
    esm: str
    classifier: str
    demo: bool = False


@dataclass(frozen=True)
class PredictConfig:
    """A validated predict run.

    Attributes:
        inputs: FASTA files (plain or .gz), in order.
        output_dir: Where outputs and checkpoints go.
        model_type: Chunk size in bp (300 or 500); must match the classifier.
        models: The three model locations.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        tokens_per_batch: Token budget per language-model batch (None: default).
        shard_size: Frames per shard.
        existing: Refuse, resume or start over in a non-empty output folder.
        skip_checkpoint_validation: Header checks only when reusing checkpoints.
        force_resume: Quarantine damaged checkpoints and recompute their work.
        keep_intermediate: Keep the prepared FASTA files (chunks and frames).
        progress: Show progress bars.
        slice_size: Sequences embedded between two in-progress checkpoints.
        workers: Processes for sequence preparation (0: all cores).
    """

    inputs: tuple[Path, ...]
    output_dir: Path
    model_type: int
    models: ModelPaths
    device: str = "auto"
    precision: str = "auto"
    tokens_per_batch: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    existing: ExistingRun = ExistingRun.REFUSE
    skip_checkpoint_validation: bool = False
    force_resume: bool = False
    keep_intermediate: bool = False
    progress: bool = True
    slice_size: int = DEFAULT_SLICE_SIZE
    workers: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise PipelineError(
                f"--model-type must be 300 or 500, not {self.model_type}"
            )
        if not self.inputs:
            raise InputError("no input FASTA files given")
        for path in self.inputs:
            if not path.is_file():
                raise InputError(f"{path}: input file not found")
        if self.shard_size < 1 or self.slice_size < 1:
            raise PipelineError("--shard-size must be at least 1")
