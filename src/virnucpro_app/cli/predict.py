"""``virnucpro-app predict``: options -> PredictRequest -> the predict job.

Exit codes: 0 success, 1 failure, 2 partial success (some input records were
skipped; see records.tsv), 3 checkpoint problem (see the run's ledger).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._options import (
    COMPUTE,
    JOB_FLAGS,
    MODELS,
    ModelTypeOption,
    setup_logging,
    with_models,
    with_run_options,
)
from virnucpro_app.config import ModelRequest, RunOptions  # noqa: TC001 - typer
from virnucpro_app.records import DEFAULT_RECORD_THRESHOLD

_INPUTS_HELP = "FASTA files (plain or .gz); with --demo and none: the bundled sample."


@app.command("predict")
@with_run_options(*JOB_FLAGS)
@with_models(classifier=True)
def predict(
    *,
    inputs: list[Path] = typer.Argument(None, help=_INPUTS_HELP, show_default=False),
    output_dir: Path = typer.Option(
        ..., "--output-dir", "-o", help="Folder for results."
    ),
    model_type: ModelTypeOption = 500,
    gpus: str | None = typer.Option(
        None,
        "--gpus",
        help="Run one process per listed GPU on this machine (e.g. 0,1,2,3), "
        "through torch's elastic launcher. For several machines use torchrun "
        "yourself (docs/app/scaling.md).",
        rich_help_panel=COMPUTE,
    ),
    record_threshold: float = typer.Option(
        DEFAULT_RECORD_THRESHOLD,
        "--record-threshold",
        min=0.0,
        max=1.0,
        help="records.tsv: a record is 'virus' when at least this fraction of "
        "its scored chunks are.",
    ),
    adopt: Path | None = typer.Option(
        None,
        "--adopt",
        metavar="LEGACY_DIR",
        help="Take the features of matching frames from an earlier run's "
        "output_N_DNABERT_S.pt / output_N_ESM.pt / output_N_merged.pt files "
        "(read only, never run as code).",
        rich_help_panel=MODELS,
    ),
    models: ModelRequest,
    options: RunOptions,
) -> None:
    """Identify viral sequences: chunks, six frames, DNABERT-S + ESM-2, MLP.

    Every stage writes checkpoints under OUTPUT_DIR/checkpoints, so a killed run
    continues with --resume. Results: prediction_results.txt (per frame),
    prediction_results_highestscore.csv (per chunk), records.tsv (per input
    record) and run_summary.json. Exit codes: 0 ok, 1 failure, 2 partial (some
    records skipped), 3 checkpoint problem.
    """
    from virnucpro_app.cli._exit import exit_on_error
    from virnucpro_app.predict.launch import (
        PredictRequest,
        launch_predict,
        relaunch_on_gpus,
        report_rank_status,
    )

    request = PredictRequest(
        inputs=tuple(inputs or ()),
        output_dir=output_dir,
        model_type=model_type,
        models=models,
        options=options,
        record_threshold=record_threshold,
        adopt_dir=adopt,
    )
    try:
        with exit_on_error(debug=options.verbose):
            setup_logging(options)
            if gpus is not None and "WORLD_SIZE" not in os.environ:
                code = relaunch_on_gpus(gpus, sys.argv[1:], output_dir)
            else:
                code = int(launch_predict(request))
    except typer.Exit as stop:
        code = stop.exit_code
    # Under --gpus each rank leaves its code to the launcher and ends with 0.
    raise typer.Exit(code=report_rank_status(code))
