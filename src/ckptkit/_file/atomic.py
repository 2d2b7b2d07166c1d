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

from ckptkit._file.format import parse_temp_name, temp_name

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk (a no-op where the OS cannot open folders)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(target: Path) -> Iterator[IO[bytes]]:
    """Yield an unbuffered binary file that replaces ``target`` atomically on exit.

    On any exception the temporary file is removed and ``target`` is untouched.

    Args:
        target: The final path.

    Yields:
        The temporary file, open for writing (seekable).
    """
    directory = target.parent
    tmp_path = directory / temp_name(target.name, secrets.token_hex(6), os.getpid())
    # buffering=0: large tensor writes go straight to the kernel, no extra copy.
    handle = tmp_path.open("xb", buffering=0)
    try:
        yield handle
        os.fsync(handle.fileno())
        handle.close()
        tmp_path.replace(target)
    except BaseException:
        handle.close()
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_directory(directory)


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
        entry
        for entry in directory.iterdir()
        if entry.is_file() and parse_temp_name(entry.name) is not None
    )


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Remove temporary files whose writer process is gone; return what was removed."""
    removed: list[Path] = []
    for path in find_temp_files(directory):
        parsed = parse_temp_name(path.name)
        if parsed is None or is_process_alive(parsed[1]):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
