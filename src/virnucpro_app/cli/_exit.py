"""The one place that maps exceptions to exit codes and one-line messages."""

from __future__ import annotations

import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import typer

from ckptkit.errors import CheckpointError
from ckptkit.types import ExitCode
from virnucpro_app.errors import AppError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_T = TypeVar("_T")

#: Exit code for Ctrl-C, as shells report SIGINT.
INTERRUPTED_EXIT_CODE = 130


def _fail(message: str, code: int, *, debug: bool) -> typer.Exit:
    if debug:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


@contextmanager
def exit_on_error(*, debug: bool = False) -> Iterator[None]:
    """Turn expected errors into a one-line message on stderr and the right exit code.

    Args:
        debug: Also print the traceback.

    Raises:
        typer.Exit: With ``ExitCode.CHECKPOINT`` for checkpoint problems, the
            error's own code for app errors, ``FAILURE`` for bad files, 130 on Ctrl-C.
    """
    try:
        yield
    except CheckpointError as error:
        raise _fail(str(error), ExitCode.CHECKPOINT, debug=debug) from error
    except AppError as error:
        raise _fail(str(error), error.exit_code, debug=debug) from error
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise _fail(str(error), ExitCode.FAILURE, debug=debug) from error
    except KeyboardInterrupt as error:
        raise _fail("interrupted", INTERRUPTED_EXIT_CODE, debug=debug) from error


def run_guarded(func: Callable[[], _T], *, debug: bool = False) -> _T:
    """Call ``func`` inside :func:`exit_on_error`."""
    with exit_on_error(debug=debug):
        return func()
