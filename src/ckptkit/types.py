"""Public type aliases and enums of ckptkit."""

from __future__ import annotations

import os
from enum import IntEnum, StrEnum
from typing import Any, Final, TypeAlias

#: A file path argument: ``str`` or any ``os.PathLike``.
PathLike: TypeAlias = str | os.PathLike[str]

#: A nested training state: dicts, lists and tuples of supported leaves
#: (None, bool, int, float, str, bytes, torch.Tensor, torch.dtype, torch.Size,
#: numpy arrays). ``Any`` stands for that documented leaf set.
StateTree: TypeAlias = Any


class Status(StrEnum):
    """The caller's word about the work a checkpoint holds."""

    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"


class ExitCode(IntEnum):
    """Exit codes shared by the ``ckptkit`` and ``virnucpro-app`` command lines.

    ``ckptkit.exit_code_for`` maps an error to its code.
    """

    OK = 0
    FAILURE = 1
    PARTIAL = 2
    CHECKPOINT = 3
    #: ``ckptkit validate --require``: every checkpoint is intact, but some lack
    #: a required key (a caller's expectation, not damage).
    MISSING_KEYS = 4


#: Exit code after Ctrl-C, as shells report SIGINT (128 + 2); not an ``ExitCode``
#: because it reports the signal, not an outcome.
INTERRUPTED_EXIT_CODE: Final = 130


__all__ = ["INTERRUPTED_EXIT_CODE", "ExitCode", "PathLike", "StateTree", "Status"]
