"""``virnucpro-app predict``: options -> PredictConfig -> the pipeline.

Exit codes: 0 success, 1 failure, 2 partial success (some input records were
skipped; see records.tsv), 3 checkpoint problem (see the run's ledger).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._run_options import demo_cache_dir, setup_logging
from virnucpro_app.config import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_SLICE_SIZE,
    ENV_CLASSIFIER,
    ENV_DEMO_CACHE,
    ENV_DNABERT,
    ENV_ESM,
)

_MODELS = "Models"
_COMPUTE = "Compute"
_RUN = "Run control"


@app.command("predict")
def predict(  # noqa: PLR0917 - typer maps parameters to options
    inputs: list[Path] = typer.Argument(
        None,
        help="FASTA files (plain or .gz); with --demo and none: the bundled sample.",
        show_default=False,
    ),
    output_dir: Path = typer.Option(
        ..., "--output-dir", "-o", help="Folder for results."
    ),
    model_type: int = typer.Option(
        500,
        "--model-type",
        help="Chunk size in bp, 300 or 500; must match the classifier.",
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
        help="ESM-2 fair-esm .pt file, or a name (esm2_t36_3B_UR50D) looked up in "
        "the torch hub cache.",
        rich_help_panel=_MODELS,
    ),
    classifier: str | None = typer.Option(
        None,
        envvar=ENV_CLASSIFIER,
        help="Classifier checkpoint (convert published .pth files with "
        "`virnucpro-app models import-classifier`).",
        rich_help_panel=_MODELS,
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Use small random-weight demo models (built on first use in "
        f"${ENV_DEMO_CACHE} or ~/.cache/virnucpro-app). Their outputs are NOT biology.",
        rich_help_panel=_MODELS,
    ),
    device: str = typer.Option(
        "auto", help="auto, cpu, cuda or cuda:N.", rich_help_panel=_COMPUTE
    ),
    precision: str = typer.Option(
        "auto",
        help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16.",
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
        help="Frames per work unit (checkpointed as a whole).",
        rich_help_panel=_COMPUTE,
    ),
    slice_size: int = typer.Option(
        DEFAULT_SLICE_SIZE,
        min=1,
        hidden=True,
        help="Frames embedded between two in-progress checkpoints of a shard.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --output-dir (starts it if none).",
        rich_help_panel=_RUN,
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Delete the run's files in --output-dir and start over.",
        rich_help_panel=_RUN,
    ),
    skip_checkpoint_validation: bool = typer.Option(
        False,
        "--skip-checkpoint-validation",
        help="On resume, check checkpoint headers only (no checksums).",
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
        help="Keep chunks.fa and the frame FASTA files.",
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
    gpus: str | None = typer.Option(
        None,
        "--gpus",
        help="Run one process per listed GPU on this machine (e.g. 0,1,2,3), "
        "through torchrun. For several machines use torchrun yourself "
        "(docs/scaling.md).",
        rich_help_panel=_COMPUTE,
    ),
    log_file: Path | None = typer.Option(
        None, "--log-file", help="Also write the log here.", rich_help_panel=_RUN
    ),
) -> None:
    """Identify viral sequences: chunks, six frames, DNABERT-S + ESM-2, MLP.

    Every stage writes checkpoints under OUTPUT_DIR/checkpoints, so a killed run
    continues with --resume. Results: prediction_results.txt (per frame),
    prediction_results_highestscore.csv (per chunk), records.tsv (per input
    record) and run_summary.json. Exit codes: 0 ok, 1 failure, 2 partial (some
    records skipped), 3 checkpoint problem.
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=verbose):
        from virnucpro_app.pipeline.launch import launch_predict, relaunch_on_gpus

        if gpus is not None and "WORLD_SIZE" not in os.environ:
            raise typer.Exit(code=relaunch_on_gpus(gpus, sys.argv[1:]))

        setup_logging(quiet=quiet, verbose=verbose, log_file=log_file)
        if resume and force:
            from virnucpro_app.errors import PipelineError

            raise PipelineError("--resume and --force exclude each other: pick one")
        code = launch_predict(
            inputs=list(inputs or []),
            output_dir=output_dir,
            model_type=model_type,
            dnabert=dnabert,
            esm=esm,
            classifier=classifier,
            demo_dir=demo_cache_dir() if demo else None,
            device=device,
            precision=precision,
            tokens_per_batch=tokens_per_batch,
            shard_size=shard_size,
            slice_size=slice_size,
            existing="resume" if resume else "force" if force else "refuse",
            skip_checkpoint_validation=skip_checkpoint_validation,
            force_resume=force_resume,
            keep_intermediate=keep_intermediate,
            progress=not no_progress and not quiet,
        )
    raise typer.Exit(code=int(code))
