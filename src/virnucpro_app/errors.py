"""Errors of virnucpro-app; each carries the exit code the CLI ends with.

::

    AppError (exit 1)
    ├── InputError        bad FASTA input: names file, line, record and the fix
    ├── ModelLoadError    a model cannot be loaded: path tried, format expected
    └── PipelineError     a run cannot go on (changed manifest, output folder in use)

Any ``ckptkit.CheckpointError`` maps to exit 3 (see ``virnucpro_app.cli._exit``).
Partial success is a result (exit 2), not an exception.
"""

from __future__ import annotations

from ckptkit.types import ExitCode


class AppError(Exception):
    """Base of every expected virnucpro-app failure; the message says what to do.

    Attributes:
        exit_code: The code the command ends with.
        quiet: Print nothing (another process of the same job prints the
            message: the other ranks of a torchrun job leave it to rank 0).
    """

    exit_code: ExitCode = ExitCode.FAILURE
    quiet: bool = False


class InputError(AppError):
    """An input file is not usable FASTA (the message names file, line and record)."""


class ModelLoadError(AppError):
    """A model file or folder cannot be loaded (message: the path and format)."""


class PipelineError(AppError):
    """The run cannot proceed (for example a manifest that does not match on resume)."""
