"""The ``virnucpro-app`` command line: one typer app, one module per command.

Modules here import no torch at module level, so ``--help`` is instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="virnucpro-app",
    help=(
        "Identify viral sequences the VirNucPro way (DNABERT-S + ESM-2 embeddings, "
        "MLP classifier), with every stage checkpointed so that a killed run resumes."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from virnucpro_app import __version__

        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(  # handled by its eager callback
        False,
        "--version",
        help="Print the virnucpro-app version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    """Identify viral sequences the VirNucPro way, resumably."""


def _mount_commands() -> None:
    # Each command module registers itself on `app` when imported.
    from virnucpro_app.cli import embed as _embed  # noqa: F401
    from virnucpro_app.cli import models as _models  # noqa: F401
    from virnucpro_app.cli import predict as _predict  # noqa: F401
    from virnucpro_app.cli import prepare as _prepare  # noqa: F401
    from virnucpro_app.cli import train as _train  # noqa: F401
    from virnucpro_app.cli import validate as _validate  # noqa: F401
    from virnucpro_app.cli import version as _version  # noqa: F401


def main() -> None:
    """Entry point of the ``virnucpro-app`` console script."""
    import sys

    _mount_commands()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as error:
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and context is not None:
            typer.echo(context.get_help())
            code = 0
        else:
            # Bad arguments: one line and exit 1; click's usual 2 means "partial".
            hint = f" (see `{context.command_path} --help`)" if context else ""
            typer.echo(f"error: {error.format_message()}{hint}", err=True)
            code = 1
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        code = 130
    sys.exit(int(code or 0))
