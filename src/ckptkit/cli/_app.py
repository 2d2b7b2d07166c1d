"""The ``ckptkit`` application object and what its commands share.

The ``app``, the common options, and :func:`exit_on_error`: the one place that
turns expected errors into one line on stderr and the exit code
``ckptkit.exit_code_for`` gives, with the traceback only under ``--verbose``.
"""

from __future__ import annotations

import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

import ckptkit
from ckptkit.cli._output import printable
from ckptkit.errors import CheckpointError, exit_code_for

if TYPE_CHECKING:
    from collections.abc import Iterator

app = typer.Typer(
    name="ckptkit",
    help="Check, inspect and tidy ckptkit checkpoints (and legacy torch.save files).",
    # A bare `ckptkit` is a usage error (one line, exit 1), not a help page.
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show tracebacks of errors.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout instead of text.")
]


def _message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, OSError) and not isinstance(error, CheckpointError):
        if error.strerror is None:  # raised with a message of its own: as it is
            return str(error)
        where = error.filename if error.filename is not None else "ckptkit"
        return f"{where}: {error.strerror}; check the path and its permissions"
    return str(error)


@contextmanager
def exit_on_error(*, verbose: bool = False) -> Iterator[None]:
    """Turn expected errors into one line on stderr and the matching exit code.

    With ``verbose``, the traceback is printed too.

    Raises:
        typer.Exit: With ``ckptkit.exit_code_for(error)``: ``CHECKPOINT`` (3) for
            checkpoint problems, ``FAILURE`` (1) for unreadable paths and bad
            values, 130 on Ctrl-C. Anything else propagates (a bug).
    """
    try:
        yield
    except (Exception, KeyboardInterrupt) as error:
        code = exit_code_for(error)
        if code is None:
            raise
        if verbose:
            traceback.print_exc(file=sys.stderr)
        typer.echo(f"error: {printable(_message(error))}", err=True)
        raise typer.Exit(code=code) from error


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ckptkit {ckptkit.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show version."
        ),
    ] = False,
) -> None:
    """Check, inspect and tidy ckptkit checkpoints (and legacy torch.save files)."""
    del version
