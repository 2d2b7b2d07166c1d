"""The ``ckptkit`` command line: validate, inspect, ledger, cleanup, consolidate ...

docs/ckptkit/cli.md is its reference. The only ckptkit package that imports
typer; each command is a thin layer over the library, in one module per job
(``_validate``, ``_files``, ``_migrate``), on the ``app`` of ``_app``, whose
``exit_on_error`` is the one place that turns errors into exit codes; what they
print goes through ``_output``.
"""

from __future__ import annotations

import sys

import typer

# Importing the command modules registers their commands; `--help` lists them in
# this order (validate first, as before the split), hence the isort splits.
from ckptkit.cli import _validate  # noqa: F401

# isort: split
from ckptkit.cli import _files  # noqa: F401

# isort: split
from ckptkit.cli import _migrate  # noqa: F401
from ckptkit.cli._app import app, exit_on_error
from ckptkit.types import INTERRUPTED_EXIT_CODE, ExitCode


def main() -> None:
    """Entry point of the ``ckptkit`` console script and ``python -m ckptkit``."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as error:
        # Bad arguments: one line, and exit 1 (click's 2 means PARTIAL here).
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        typer.echo(f"error: {error.format_message()}{hint}", err=True)
        code = ExitCode.FAILURE
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        code = INTERRUPTED_EXIT_CODE
    sys.exit(int(code or 0))


__all__ = ["app", "exit_on_error", "main"]
