"""``virnucpro-app models``: model file utilities (``make-demo``)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app

models_app = typer.Typer(
    name="models",
    help="Model files: build the demo models.",
    no_args_is_help=True,
)
app.add_typer(models_app)


@models_app.command("make-demo")
def make_demo(
    directory: Path = typer.Argument(..., help="Folder to write the demo models to."),
    seed: int = typer.Option(0, help="Random seed of the weights."),
    debug: bool = typer.Option(False, help="Show tracebacks."),
) -> None:
    """Write small random-weight demo models in the real on-disk formats.

    They exercise the real loaders; their outputs are NOT biology.
    """
    # ckptkit (through the error mapping) imports torch: only once the command runs.
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=debug):
        from virnucpro_app.demo import make_demo_models

        demo = make_demo_models(directory, seed=seed)
        typer.echo(f"dnabert: {demo.dnabert_dir}")
        typer.echo(f"esm: {demo.esm_path}")
        typer.echo(
            "NOTE: demo models have random weights; their outputs are NOT BIOLOGY",
            err=True,
        )
