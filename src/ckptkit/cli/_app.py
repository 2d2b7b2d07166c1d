"""The ``ckptkit`` application object and what its commands share.

The ``app``, the common options, one-line printing, and :func:`exit_on_error`:
the one place that turns expected errors into one line on stderr and the exit
code ``ckptkit.exit_code_for`` gives, with the traceback only under ``--verbose``.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

import ckptkit
from ckptkit.errors import CheckpointError, exit_code_for
from ckptkit.ledger import escape_field

if TYPE_CHECKING:
    from collections.abc import Iterator

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")

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


def printable(value: object) -> str:
    r"""One printable line: breaks, controls, undecodable bytes as ``\n``, ``\x1b``."""
    return _UNPRINTABLE.sub(lambda match: escape_field(match.group()), str(value))


def echo_json(data: object) -> None:
    """Print JSON data on stdout, indented."""
    typer.echo(json.dumps(data, indent=2))


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

    Args:
        verbose: Also print the traceback.

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
