"""``virnucpro-app validate-checkpoints``: check a run's checkpoints before a resume."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._options import DebugOption  # noqa: TC001 - typer reads it

# Of ckptkit's ValidationReport.to_json(), the fields this command prints per line.
_JSON_KEYS = ("path", "ok", "kind", "reason")


@app.command("validate-checkpoints")
def validate_checkpoints(
    run_dir: Path = typer.Argument(
        ..., help="A predict --output-dir (or its checkpoints/)."
    ),
    level: str = typer.Option("full", help="exists, quick or full (checksums)."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per checkpoint."
    ),
    no_ledger: bool = typer.Option(
        False, "--no-ledger", help="Do not record failures."
    ),
    debug: DebugOption = False,
) -> None:
    """Validate every checkpoint of a run (ckptkit's validation and ledger).

    Failures are recorded in the run's ledger (checkpoints/failed_checkpoints.txt).
    Exit codes as `ckptkit validate`: 0 all valid, 3 any corrupted, incompatible
    or missing, 1 other errors.
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=debug):
        import ckptkit
        from virnucpro_app.errors import InputError
        from virnucpro_app.layout import CHECKPOINTS_DIR

        if level not in ("exists", "quick", "full"):
            raise InputError(f"--level must be exists, quick or full, not {level!r}")
        folder = (
            run_dir / CHECKPOINTS_DIR
            if (run_dir / CHECKPOINTS_DIR).is_dir()
            else run_dir
        )
        if not folder.is_dir():
            raise InputError(f"{run_dir}: not a folder")
        report = ckptkit.validate_tree(
            [folder],
            level=level,  # type: ignore[arg-type]
            ledger=None if no_ledger else "folder",
        )
        for item in report.reports:
            if as_json:
                data = item.to_json()
                typer.echo(json.dumps({key: data[key] for key in _JSON_KEYS}))
            elif not item.ok:
                typer.echo(f"{item.path}: {item.kind}: {item.reason}")
        typer.echo(report.summary(), err=as_json)
        code = report.exit_code
    raise typer.Exit(code=int(code))
