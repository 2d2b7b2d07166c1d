"""From command-line values to a running train job.

Resolves the two language models (flags, environment variables or the demo
models), the device and precision, and their content identities, then hands a
:class:`~virnucpro_app.training.run.TrainConfig` to ``run_train``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virnucpro_app.config import ENV_DNABERT, ENV_ESM, ExistingRun, ModelPaths
from virnucpro_app.errors import ModelLoadError
from virnucpro_app.layout import TrainLayout

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.training.recipe import TrainRecipe

LOG = logging.getLogger("virnucpro_app")


@dataclass(frozen=True)
class TrainRequest:
    """The command line of ``train``, before anything is resolved.

    Attributes:
        virus: Virus FASTA files.
        host: Host FASTA files.
        output: Classifier file to write.
        checkpoint_dir: Checkpoint folder (None: ``{output stem}.training``).
        model_type: Chunk size in bp.
        dnabert: DNABERT-S folder, if given.
        esm: ESM-2 file or name, if given.
        demo_dir: Demo model cache with ``--demo``, else None.
        device: Requested device.
        precision: Requested precision of the language models.
        tokens_per_batch: Token budget per batch.
        shard_size: Frames per shard.
        slice_size: Frames between in-progress saves of a shard.
        existing: refuse, resume or force.
        skip_checkpoint_validation: Header checks only when reusing checkpoints.
        force_resume: Set damaged checkpoints aside and recompute.
        keep_intermediate: Keep the prepared FASTA files.
        progress: Show progress bars.
        recipe: Hyper-parameters.
        batch_pause_s: Pause after each batch (testing aid).
    """

    virus: tuple[Path, ...]
    host: tuple[Path, ...]
    output: Path
    checkpoint_dir: Path | None
    model_type: int
    dnabert: str | None
    esm: str | None
    demo_dir: Path | None
    device: str
    precision: str
    tokens_per_batch: int | None
    shard_size: int
    slice_size: int
    existing: ExistingRun
    skip_checkpoint_validation: bool
    force_resume: bool
    keep_intermediate: bool
    progress: bool
    recipe: TrainRecipe
    batch_pause_s: float = 0.0


def resolve_models(request: TrainRequest) -> ModelPaths:
    """DNABERT-S and ESM-2 locations; with ``--demo`` explicit ones still win.

    Raises:
        ModelLoadError: A model is missing, naming its flag and variable.
    """
    if request.demo_dir is not None:
        from virnucpro_app.pipeline.launch import demo_models

        demo = demo_models(request.demo_dir, request.model_type)
        return ModelPaths(
            dnabert=request.dnabert or demo.dnabert,
            esm=request.esm or demo.esm,
            classifier="",
            demo=True,
        )
    missing = [
        f"{flag} (or ${env})"
        for value, flag, env in (
            (request.dnabert, "--dnabert", ENV_DNABERT),
            (request.esm, "--esm", ENV_ESM),
        )
        if not value
    ]
    if missing:
        raise ModelLoadError(
            "no model given for " + ", ".join(missing) + "; pass them, or --demo to "
            "try training with random-weight demo models"
        )
    return ModelPaths(dnabert=str(request.dnabert), esm=str(request.esm), classifier="")


def launch_train(request: TrainRequest) -> dict[str, object]:
    """Resolve models, device and paths, then run (or resume) the training.

    Returns:
        The training summary.

    Raises:
        AppError: Bad inputs, models, options or checkpoints (see ``run_train``).
    """
    from virnucpro_app.device import plan_device
    from virnucpro_app.pipeline.launch import dnabert_identity, esm_identity
    from virnucpro_app.training.features import FeatureSettings
    from virnucpro_app.training.run import TrainConfig, run_train

    models = resolve_models(request)
    plan = plan_device(request.device, request.precision)
    LOG.info(
        "device %s, precision %s%s",
        plan.device,
        plan.precision.value,
        f" ({plan.note})" if plan.note else "",
    )
    layout = (
        TrainLayout(request.checkpoint_dir)
        if request.checkpoint_dir is not None
        else TrainLayout.default_for(request.output)
    )
    features = FeatureSettings(
        models=models,
        model_type=request.model_type,
        device=plan.device,
        precision=plan.precision.value,
        tokens_per_batch=request.tokens_per_batch,
        shard_size=request.shard_size,
        slice_size=request.slice_size,
        skip_checkpoint_validation=request.skip_checkpoint_validation,
        force_resume=request.force_resume,
        keep_intermediate=request.keep_intermediate,
        progress=request.progress,
        dnabert_identity=dnabert_identity(models.dnabert),
        esm_identity=esm_identity(models.esm),
    )
    config = TrainConfig(
        virus=request.virus,
        host=request.host,
        output=request.output,
        layout=layout,
        recipe=request.recipe,
        features=features,
        existing=request.existing,
        progress=request.progress,
        batch_pause_s=request.batch_pause_s,
    )
    return run_train(config)
