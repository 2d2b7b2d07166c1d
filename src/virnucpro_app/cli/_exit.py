"""The one place that maps exceptions to exit codes and one-line messages."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from ckptkit.errors import CheckpointError, exit_code_for
from virnucpro_app.errors import AppError

if TYPE_CHECKING:
    from collections.abc import Iterator

# The errors ckptkit's mapping (ckptkit.exit_code_for) turns into one line here;
# other OSErrors and ValueErrors keep their traceback, as before (what the app
# expects to go wrong is an AppError).
_MAPPED_BY_CKPTKIT = (
    CheckpointError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    KeyboardInterrupt,
)


def _fail(message: str, code: int, *, debug: bool) -> typer.Exit:
    from virnucpro_app import runlog

    if debug:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    runlog.to_files(logging.ERROR, message)  # the run's log files, if any
    return typer.Exit(code=code)


@contextmanager
def exit_on_error(*, debug: bool = False) -> Iterator[None]:
    """Turn expected errors into a one-line message on stderr and the right exit code.

    Args:
        debug: Also print the traceback.

    Raises:
        typer.Exit: The error's own code for app errors; otherwise the code of
            ``ckptkit.exit_code_for``: ``CHECKPOINT`` for checkpoint problems,
            ``FAILURE`` for missing or unreadable files, 130 on Ctrl-C.
    """
    try:
        yield
    except AppError as error:
        if error.quiet:
            raise typer.Exit(code=error.exit_code) from error
        raise _fail(str(error), error.exit_code, debug=debug) from error
    except _MAPPED_BY_CKPTKIT as error:
        code = exit_code_for(error)
        if code is None:  # pragma: no cover - every mapped type has a code
            raise
        message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        raise _fail(message, code, debug=debug) from error
