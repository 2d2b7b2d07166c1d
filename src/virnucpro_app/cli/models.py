"""``virnucpro-app models``: model file utilities (``make-demo``)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads annotations at run time

import typer

from virnucpro_app.cli import app
from virnucpro_app.cli._options import DebugOption  # noqa: TC001 - typer reads it

models_app = typer.Typer(
    name="models",
    help="Model files: build the demo models, import published classifiers.",
    no_args_is_help=True,
)
app.add_typer(models_app)


@models_app.command("make-demo")
def make_demo(
    directory: Path = typer.Argument(..., help="Folder to write the demo models to."),
    seed: int = typer.Option(0, help="Random seed of the weights."),
    debug: DebugOption = False,
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


@models_app.command("import-classifier")
def import_classifier(
    source: Path = typer.Argument(
        ..., help="Published 300_model.pth / 500_model.pth (a pickled MLPClassifier)."
    ),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        help="The chunk size it was trained for: 300 or 500 (default: the one "
        "its name says, 300_model.pth or 500_model.pth).",
        show_default=False,
    ),
    output: Path = typer.Option(
        ..., "--output", help="The classifier checkpoint to write."
    ),
    debug: DebugOption = False,
) -> None:
    """Convert a published VirNucPro classifier into a ckptkit checkpoint.

    The pickle is read with weights_only=True and an allowlist of exactly the
    classes such a file holds (MLPClassifier, Linear, BatchNorm1d, Dropout); a
    file that needs anything else is refused without being run (exit 3).
    """
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=debug):
        from virnucpro_app.errors import InputError
        from virnucpro_app.models.classifier import (
            chunk_size_in_name,
            import_legacy_classifier,
        )

        named = chunk_size_in_name(source)
        size = chunk_size if chunk_size is not None else named
        if size is None:
            raise InputError(
                f"{source.name} does not say its chunk size: pass --chunk-size 300 "
                "or 500 (the size it was trained for)"
            )
        if size not in (300, 500):
            raise InputError(f"--chunk-size must be 300 or 500, not {size}")
        if named is not None and named != size:
            typer.echo(
                f"warning: {source.name} is named for {named} bp chunks but "
                f"--chunk-size is {size}; a classifier run on chunks of another "
                "size than it was trained for gives meaningless scores",
                err=True,
            )
        if output.exists():
            raise InputError(f"{output} exists; choose another --output or remove it")
        info = import_legacy_classifier(source, output, chunk_size=size)
        typer.echo(
            f"wrote {info.path} (schema virnucpro.classifier {info.version}, "
            f"{info.metadata['input_dim']} -> {info.metadata['hidden_dim']} -> "
            f"{info.metadata['num_classes']}, chunk size {size})"
        )
