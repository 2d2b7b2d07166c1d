"""Atomic, durable file replacement.

Write to a uniquely named temporary file in the target's directory, flush and
fsync it, ``os.replace`` it over the target, then fsync the directory: the rename
is not durable until the directory entry is flushed. A crash at any moment leaves
the target either whole-old or whole-new; leftover temporary files carry a name
that is never mistaken for a checkpoint (see ``format.temp_name``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import IO, TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.format import parse_temp_name, temp_name

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def atomic_write(target: Path) -> Iterator[IO[bytes]]:
    """Yield an unbuffered binary file that replaces ``target`` atomically on exit.

    On any exception the temporary file is removed and ``target`` is untouched.

    Args:
        target: The final path.

    Yields:
        The temporary file, open for writing (seekable, unbuffered: write to it
        with ``fs.write_all``, which never takes a short write as done).
    """
    directory = target.parent
    tmp_path = directory / temp_name(target.name, secrets.token_hex(6), os.getpid())
    handle = fs.open_new(tmp_path)
    try:
        yield handle
        fs.fsync(handle)
        fs.close(handle)
        fs.replace(tmp_path, target)
    except BaseException:
        # The handle's own close, not the seam's: the descriptor must be released
        # even when fs.close is what failed, and a failing close must not keep
        # the temporary file, which is removed whatever close says.
        with contextlib.suppress(OSError):
            handle.close()
        fs.unlink(tmp_path, missing_ok=True)
        raise
    fs.fsync_directory(directory)


def is_process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a temporary file's writer may still write)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - alive, owned by someone else
        return True
    return True


def find_temp_files(directory: Path) -> list[Path]:
    """Temporary files of ckptkit writers directly inside ``directory``."""
    return sorted(
        directory / name
        for name in fs.list_files(directory)
        if parse_temp_name(name) is not None
    )


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Remove temporary files whose writer process is gone; return what was removed."""
    removed: list[Path] = []
    for path in find_temp_files(directory):
        parsed = parse_temp_name(path.name)
        if parsed is None or is_process_alive(parsed[1]):
            continue
        fs.unlink(path, missing_ok=True)
        removed.append(path)
    return removed
