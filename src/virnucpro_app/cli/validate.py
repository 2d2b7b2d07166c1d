"""``virnucpro-app validate-checkpoints``: check a run's checkpoints before a resume."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._options import DebugOption  # noqa: TC001 - typer reads it

#: Ledger entries shown after the summary, newest last.
LEDGER_ENTRIES_SHOWN = 10


def _print_ledger(folder: Path, *, err: bool) -> None:
    """The newest entries of the run's failure ledger, as the original tool did."""
    import ckptkit

    ledger = ckptkit.FailureLedger(folder)
    entries = ledger.entries()
    if not entries:
        typer.echo(f"ledger {ledger.path}: no failures recorded", err=err)
        return
    shown = entries[-LEDGER_ENTRIES_SHOWN:]
    typer.echo(
        f"ledger {ledger.path}: newest {len(shown)} of {len(entries)} entries",
        err=err,
    )
    for entry in shown:
        typer.echo(f"  {entry.timestamp}  {entry.path}: {entry.reason}", err=err)


@app.command("validate-checkpoints")
def validate_checkpoints(
    run_dir: Path = typer.Argument(
        ..., help="A predict --output-dir (or its checkpoints/)."
    ),
    level: str = typer.Option("full", help="exists, quick or full (checksums)."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the document `ckptkit validate --json` prints on stdout.",
    ),
    no_ledger: bool = typer.Option(
        False, "--no-ledger", help="Do not record failures."
    ),
    debug: DebugOption = False,
) -> None:
    """Validate every checkpoint of a run (ckptkit's validation and ledger).

    Failures are recorded in the run's ledger (checkpoints/failed_checkpoints.txt),
    whose newest entries are printed after the summary. Exit codes as `ckptkit
    validate`: 0 all valid, 3 any corrupted, incompatible or missing, or no
    checkpoint at all; 1 other errors.
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=debug):
        import ckptkit
        from virnucpro_app.errors import InputError
        from virnucpro_app.layout import CHECKPOINTS_DIR
        from virnucpro_app.stages.store import CheckpointProblemError

        if level not in ("exists", "quick", "full"):
            raise InputError(f"--level must be exists, quick or full, not {level!r}")
        if not run_dir.exists():
            raise InputError(f"{run_dir} does not exist: pass a predict --output-dir")
        folder = (
            run_dir / CHECKPOINTS_DIR
            if (run_dir / CHECKPOINTS_DIR).is_dir()
            else run_dir
        )
        if not folder.is_dir():
            raise InputError(f"{run_dir}: not a folder; pass a predict --output-dir")
        report = ckptkit.validate_tree(
            [folder],
            level=level,  # type: ignore[arg-type]
            ledger=None if no_ledger else "folder",
        )
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            for item in report.reports:
                if not item.ok:
                    typer.echo(f"{item.path}: {item.kind}: {item.reason}")
            typer.echo(report.summary())
        _print_ledger(folder, err=as_json)
        if not report.reports:
            raise CheckpointProblemError(
                f"no checkpoints found in {run_dir}: is this a predict --output-dir?"
            )
        code = report.exit_code
    raise typer.Exit(code=int(code))
