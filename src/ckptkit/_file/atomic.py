"""Atomic, durable file replacement.

Write to a uniquely named temporary file in the target's directory, flush and
fsync it, ``os.replace`` it over the target, then fsync the directory: the rename
is not durable until the directory entry is flushed. A crash at any moment leaves
the target either whole-old or whole-new; leftover temporary files carry a name
that is never mistaken for a checkpoint (see ``format.temp_name``).

A temporary file is stale once its writer is gone: its process has exited, or,
in this process, the write that made it has ended (failed) without removing it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
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

    Yields:
        The temporary file, open for writing (seekable, unbuffered: write to it
        with ``streams.write_all``, which never takes a short write as done).
    """
    directory = target.parent
    tmp_path = directory / temp_name(target.name, secrets.token_hex(6), os.getpid())
    with _writing(tmp_path):
        handle = _open_temporary(tmp_path)
        try:
            yield handle
            fs.fsync(handle)
            fs.close(handle)
            fs.replace(tmp_path, target)
        except BaseException:
            # The handle's own close, not the seam's: the descriptor must be
            # released even when fs.close is what failed, and a failing close must
            # not keep the temporary file, which is removed whatever close says.
            # Should the removal fail too, the first error is the one to report;
            # the file left is stale from now on, and ``cleanup`` removes it.
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                fs.unlink(tmp_path, missing_ok=True)
            raise
    fs.fsync_directory(directory)


def _open_temporary(tmp_path: Path) -> IO[bytes]:
    """Create the temporary file; a missing folder is named, not the file."""
    try:
        return fs.open_new(tmp_path)
    except (FileNotFoundError, NotADirectoryError) as error:
        folder = tmp_path.parent
        reason = (
            f"folder does not exist; create it first (mkdir -p {folder}) "
            "or choose another path"
        )
        if isinstance(error, NotADirectoryError):
            reason = "is not a folder; choose a path inside a folder"
        raise type(error)(error.errno or errno.ENOENT, reason, str(folder)) from None


# Temporary files this process is writing now (their paths); any other of its
# own temporary files is stale.
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def _writing(tmp_path: Path) -> Iterator[None]:
    with _ACTIVE_LOCK:
        _ACTIVE.add(tmp_path.name)  # names are unique: each has a random token
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(tmp_path.name)


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
    """Temporary files of ckptkit writers directly inside ``directory``.

    Symbolic links are never among them: ckptkit writes no links, so a link with
    such a name belongs to someone else.
    """
    return sorted(
        directory / name
        for name in fs.list_files(directory)
        if parse_temp_name(name) is not None and not fs.is_symlink(directory / name)
    )


def is_stale(path: Path) -> bool:
    """Whether the temporary file ``path`` lost its writer (see the module doc)."""
    parsed = parse_temp_name(path.name)
    if parsed is None:
        return False
    pid = parsed[1]
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return path.name not in _ACTIVE
    return not is_process_alive(pid)


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Remove temporary files whose writer is gone; return what was removed."""
    removed: list[Path] = []
    for path in find_temp_files(directory):
        if is_stale(path):
            fs.unlink(path, missing_ok=True)
            removed.append(path)
    return removed
