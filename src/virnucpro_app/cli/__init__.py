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


@app.callback()
def _root() -> None:
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
    _mount_commands()
    app()
