"""Special files (FIFOs, sockets, devices): what each is called, and the refusal.

Reading one could wait forever (a FIFO without a writer) or never end (a device),
so ``fs.open_read`` opens regular files only and refuses the others with
:class:`NotRegularFileError`, whose message says what the file is.
"""

from __future__ import annotations

import errno
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class NotRegularFileError(OSError):
    """A path that should be a file is a FIFO, socket or device (never read)."""


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def check_regular(mode: int, path: Path) -> None:
    """Refuse a file whose ``mode`` (from ``stat``) is not a regular file's.

    Raises:
        NotRegularFileError: A FIFO, socket, device or other special file (named).
    """
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _SPECIAL_KINDS if test(mode)), "special file")
        reason = f"is a {kind}, not a regular file"
        raise NotRegularFileError(errno.EINVAL, reason, str(path))
