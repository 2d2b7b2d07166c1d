"""``virnucpro-app train``: labelled FASTA -> features -> the MLP classifier.

Exit codes: 0 success, 1 failure, 3 checkpoint problem (see the ledger).
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._run_options import demo_cache_dir, setup_logging
from virnucpro_app.config import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_SLICE_SIZE,
    ENV_DEMO_CACHE,
    ENV_DNABERT,
    ENV_ESM,
)
from virnucpro_app.training import recipe as defaults

_INPUTS = "Inputs and outputs"
_MODELS = "Models"
_COMPUTE = "Compute"
_TRAINING = "Training (defaults: the original recipe)"
_RUN = "Run control"


@app.command("train")
def train(  # noqa: PLR0917 - typer maps parameters to options
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
    model_type: int = typer.Option(
        500,
        "--model-type",
        help="Chunk size in bp, 300 or 500.",
        rich_help_panel=_MODELS,
    ),
    dnabert: str | None = typer.Option(
        None,
        envvar=ENV_DNABERT,
        help="DNABERT-S folder (config.json, weights, tokenizer.json).",
        rich_help_panel=_MODELS,
    ),
    esm: str | None = typer.Option(
        None,
        envvar=ENV_ESM,
        help="ESM-2 fair-esm .pt file, or a name looked up in the torch hub cache.",
        rich_help_panel=_MODELS,
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Use the small random-weight demo DNABERT-S and ESM-2 (built on first "
        f"use in ${ENV_DEMO_CACHE} or ~/.cache/virnucpro-app). NOT biology.",
        rich_help_panel=_MODELS,
    ),
    device: str = typer.Option(
        "auto", help="auto, cpu, cuda or cuda:N.", rich_help_panel=_COMPUTE
    ),
    precision: str = typer.Option(
        "auto",
        help="Language models: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or "
        "fp16. The MLP always trains in fp32.",
        rich_help_panel=_COMPUTE,
    ),
    tokens_per_batch: int | None = typer.Option(
        None,
        min=1,
        help="Token budget per language-model batch.",
        rich_help_panel=_COMPUTE,
    ),
    shard_size: int = typer.Option(
        DEFAULT_SHARD_SIZE,
        min=1,
        help="Frames per feature work unit (checkpointed as a whole).",
        rich_help_panel=_COMPUTE,
    ),
    slice_size: int = typer.Option(
        DEFAULT_SLICE_SIZE,
        min=1,
        hidden=True,
        help="Frames embedded between two in-progress checkpoints of a shard.",
    ),
    epochs: int = typer.Option(
        defaults.DEFAULT_EPOCHS, min=1, help="Most epochs.", rich_help_panel=_TRAINING
    ),
    patience: int = typer.Option(
        defaults.DEFAULT_PATIENCE,
        min=1,
        help="Stop after this many epochs without a lower validation loss.",
        rich_help_panel=_TRAINING,
    ),
    lr: float = typer.Option(
        defaults.DEFAULT_LR, help="SGD learning rate.", rich_help_panel=_TRAINING
    ),
    momentum: float = typer.Option(
        defaults.DEFAULT_MOMENTUM, help="SGD momentum.", rich_help_panel=_TRAINING
    ),
    batch_size: int = typer.Option(
        defaults.DEFAULT_BATCH_SIZE,
        min=defaults.MIN_BATCH_SIZE,
        help="Training batch size.",
        rich_help_panel=_TRAINING,
    ),
    val_fraction: float = typer.Option(
        defaults.DEFAULT_VAL_FRACTION,
        help="Fraction of frames held out for validation.",
        rich_help_panel=_TRAINING,
    ),
    seed: int = typer.Option(
        defaults.DEFAULT_SEED,
        help="Seeds the split, initial weights, dropout and data order.",
        rich_help_panel=_TRAINING,
    ),
    step_size: int = typer.Option(
        defaults.DEFAULT_STEP_SIZE,
        min=1,
        help="StepLR period in epochs.",
        rich_help_panel=_TRAINING,
    ),
    gamma: float = typer.Option(
        defaults.DEFAULT_GAMMA, help="StepLR decay factor.", rich_help_panel=_TRAINING
    ),
    batch_pause_ms: float = typer.Option(
        0.0, min=0.0, hidden=True, help="Testing aid: sleep after each batch."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the training in the checkpoint folder (starts it if none).",
        rich_help_panel=_RUN,
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Delete the checkpoint folder's run and --output, and start over.",
        rich_help_panel=_RUN,
    ),
    skip_checkpoint_validation: bool = typer.Option(
        False,
        "--skip-checkpoint-validation",
        help="On resume, check feature checkpoint headers only (no checksums).",
        rich_help_panel=_RUN,
    ),
    force_resume: bool = typer.Option(
        False,
        "--force-resume",
        help="On resume, set damaged checkpoints aside (kept, renamed) and "
        "recompute their work.",
        rich_help_panel=_RUN,
    ),
    keep_intermediate: bool = typer.Option(
        False,
        "--keep-intermediate",
        help="Keep the chunk and frame FASTA files of the features folders.",
        rich_help_panel=_RUN,
    ),
    no_progress: bool = typer.Option(
        False, "--no-progress", help="No progress bars.", rich_help_panel=_RUN
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Warnings and errors only.", rich_help_panel=_RUN
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Debug log and tracebacks.", rich_help_panel=_RUN
    ),
    log_file: Path | None = typer.Option(
        None, "--log-file", help="Also write the log here.", rich_help_panel=_RUN
    ),
) -> None:
    """Train VirNucPro's MLP classifier on viral and host FASTA files.

    Chunks, six frames, DNABERT-S + ESM-2 features (checkpointed like predict, in
    CHECKPOINT_DIR/features/{virus,host}), then the original recipe (SGD, StepLR,
    early stopping) with a checkpoint per epoch in CHECKPOINT_DIR/train. A killed
    run continues with --resume and ends with the same classifier. Writes OUTPUT
    (the best epoch's weights) and CHECKPOINT_DIR/train_summary.json. Exit codes:
    0 ok, 1 failure, 3 checkpoint problem.
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=verbose):
        from virnucpro_app.config import ExistingRun
        from virnucpro_app.errors import PipelineError
        from virnucpro_app.training.launch import TrainRequest, launch_train
        from virnucpro_app.training.recipe import TrainRecipe

        setup_logging(quiet=quiet, verbose=verbose, log_file=log_file)
        if resume and force:
            raise PipelineError("--resume and --force exclude each other: pick one")
        request = TrainRequest(
            virus=tuple(virus),
            host=tuple(host),
            output=output,
            checkpoint_dir=checkpoint_dir,
            model_type=model_type,
            dnabert=dnabert,
            esm=esm,
            demo_dir=demo_cache_dir() if demo else None,
            device=device,
            precision=precision,
            tokens_per_batch=tokens_per_batch,
            shard_size=shard_size,
            slice_size=slice_size,
            existing=ExistingRun.RESUME
            if resume
            else ExistingRun.FORCE
            if force
            else ExistingRun.REFUSE,
            skip_checkpoint_validation=skip_checkpoint_validation,
            force_resume=force_resume,
            keep_intermediate=keep_intermediate,
            progress=not no_progress and not quiet,
            recipe=TrainRecipe(
                epochs=epochs,
                patience=patience,
                lr=lr,
                momentum=momentum,
                batch_size=batch_size,
                val_fraction=val_fraction,
                seed=seed,
                step_size=step_size,
                gamma=gamma,
            ),
            batch_pause_s=batch_pause_ms / 1000,
        )
        launch_train(request)
