"""From a command line's request to a running train job.

Resolves the two language models (flags, environment variables or the demo
models), the device and precision, and their content identities, then hands a
:class:`~virnucpro_app.training.run.TrainConfig` to ``run_train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from virnucpro_app.layout import TrainLayout

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.config import ModelRequest, RunOptions
    from virnucpro_app.training.recipe import TrainRecipe


@dataclass(frozen=True)
class TrainRequest:
    """The command line of ``train``, before anything is resolved.

    Attributes:
        output: Classifier file to write.
        checkpoint_dir: Checkpoint folder (None: ``{output stem}.training``).
        model_type: Chunk size in bp.
        models: The language models named on the command line.
        options: The shared run options (device and precision as asked).
        batch_pause_s: Pause after each batch (testing aid).
    """

    virus: tuple[Path, ...]
    host: tuple[Path, ...]
    output: Path
    checkpoint_dir: Path | None
    model_type: int
    models: ModelRequest
    recipe: TrainRecipe
    options: RunOptions
    batch_pause_s: float = 0.0


def launch_train(request: TrainRequest) -> dict[str, object]:
    """Resolve models, device and paths, then run (or resume) the training.

    Raises:
        AppError: Bad inputs, models, options or checkpoints (see ``run_train``).
    """
    from virnucpro_app.alphabet import SequenceKind, check_inputs
    from virnucpro_app.stages.manifest import ModelIdentities
    from virnucpro_app.stages.preflight import check_models
    from virnucpro_app.training.run import TrainConfig, run_train

    # Checked before anything is written: a failed start never blocks the
    # corrected command.
    advice = "train takes nucleotide contigs (--virus, --host)"
    check_inputs(
        [*request.virus, *request.host], SequenceKind.NUCLEOTIDE, advice=advice
    )
    models = request.models.resolve(request.model_type, classifier=False)
    check_models(models, request.model_type, classifier=False)
    options = request.options.resolve_device()
    layout = (
        TrainLayout(request.checkpoint_dir)
        if request.checkpoint_dir is not None
        else TrainLayout.default_for(request.output)
    )
    config = TrainConfig(
        virus=request.virus,
        host=request.host,
        output=request.output,
        layout=layout,
        recipe=request.recipe,
        model_type=request.model_type,
        models=models,
        options=options,
        identities=ModelIdentities.of(models),
        batch_pause_s=request.batch_pause_s,
    )
    return run_train(config)
