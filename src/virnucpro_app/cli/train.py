"""``virnucpro-app train``: labelled FASTA -> features -> the MLP classifier.

Exit codes: 0 success, 1 failure, 3 checkpoint problem (see the ledger).
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import TYPE_CHECKING

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._options import (
    JOB_FLAGS,
    ModelTypeOption,
    flag,
    gather,
    setup_logging,
    with_models,
    with_run_options,
)
from virnucpro_app.config import ModelRequest, RunOptions  # noqa: TC001 - typer
from virnucpro_app.training import recipe as defaults
from virnucpro_app.training.recipe import TrainRecipe

if TYPE_CHECKING:
    import inspect

_INPUTS = "Inputs and outputs"
_TRAINING = "Training (defaults: the original recipe)"


def _recipe_flag(
    name: str, default: float, text: str, *, minimum: int | None = None
) -> inspect.Parameter:
    return flag(name, type(default), default, text, panel=_TRAINING, min=minimum)


#: One flag per :class:`TrainRecipe` field, defaults the original recipe's.
RECIPE_FLAGS = (
    _recipe_flag("epochs", defaults.DEFAULT_EPOCHS, "Most epochs.", minimum=1),
    _recipe_flag(
        "patience",
        defaults.DEFAULT_PATIENCE,
        "Stop after this many epochs without a lower validation loss.",
        minimum=1,
    ),
    _recipe_flag("lr", defaults.DEFAULT_LR, "SGD learning rate."),
    _recipe_flag("momentum", defaults.DEFAULT_MOMENTUM, "SGD momentum."),
    _recipe_flag(
        "batch_size",
        defaults.DEFAULT_BATCH_SIZE,
        "Training batch size.",
        minimum=defaults.MIN_BATCH_SIZE,
    ),
    _recipe_flag(
        "val_fraction",
        defaults.DEFAULT_VAL_FRACTION,
        "Fraction of frames held out for validation.",
    ),
    _recipe_flag(
        "seed",
        defaults.DEFAULT_SEED,
        "Seeds the split, initial weights, dropout and data order.",
    ),
    _recipe_flag(
        "step_size", defaults.DEFAULT_STEP_SIZE, "StepLR period in epochs.", minimum=1
    ),
    _recipe_flag("gamma", defaults.DEFAULT_GAMMA, "StepLR decay factor."),
)


@app.command("train")
@with_run_options(*JOB_FLAGS)
@with_models(classifier=False)
@gather("recipe", RECIPE_FLAGS, lambda values: TrainRecipe(**values))
def train(
    *,
    virus: list[Path] = typer.Option(
        ...,
        "--virus",
        help="Viral FASTA file (label 1); repeat for several.",
        rich_help_panel=_INPUTS,
    ),
    host: list[Path] = typer.Option(
        ...,
        "--host",
        help="Host / non-viral FASTA file (label 0); repeat for several.",
        rich_help_panel=_INPUTS,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Classifier checkpoint to write (what predict --classifier reads).",
        rich_help_panel=_INPUTS,
    ),
    checkpoint_dir: Path | None = typer.Option(
        None,
        "--checkpoint-dir",
        help="Feature and epoch checkpoints (default: next to OUTPUT, its name "
        "without suffix plus .training).",
        show_default=False,
        rich_help_panel=_INPUTS,
    ),
    model_type: ModelTypeOption = 500,
    batch_pause_ms: float = typer.Option(
        0.0, min=0.0, hidden=True, help="Testing aid: sleep after each batch."
    ),
    models: ModelRequest,
    recipe: TrainRecipe,
    options: RunOptions,
) -> None:
    """Train VirNucPro's MLP classifier on viral and host FASTA files.

    Chunks, six frames, DNABERT-S + ESM-2 features (checkpointed like predict, in
    CHECKPOINT_DIR/features/{virus,host}), then the original recipe (SGD, StepLR,
    early stopping) with a checkpoint per epoch in CHECKPOINT_DIR/train. A killed
    run continues with --resume and ends with the same classifier. Writes OUTPUT
    (the best epoch's weights) and CHECKPOINT_DIR/train_summary.json. The
    language models run at --precision; the MLP always trains in fp32. Exit
    codes: 0 ok, 1 failure, 3 checkpoint problem.
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=options.verbose):
        from virnucpro_app.training.launch import TrainRequest, launch_train

        setup_logging(options)
        request = TrainRequest(
            virus=tuple(virus),
            host=tuple(host),
            output=output,
            checkpoint_dir=checkpoint_dir,
            model_type=model_type,
            models=models,
            recipe=recipe,
            options=options,
            batch_pause_s=batch_pause_ms / 1000,
        )
        launch_train(request)
