"""``virnucpro-app version``."""

from __future__ import annotations

import typer

from virnucpro_app import __version__
from virnucpro_app.cli import app


@app.command()
def version() -> None:
    """Print the virnucpro-app version."""
    typer.echo(__version__)
