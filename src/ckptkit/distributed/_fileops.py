"""Every file operation of ``ckptkit.distributed``, in one place.

Shard files are written by ckptkit's single-file writer (``_save.write_encoded``)
and read by its reader; everything else this package does to a file system goes
through the small functions below, so that they can be pointed at another I/O
layer in one edit. Nothing here imports torch.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from ckptkit._atomic import fsync_directory

if TYPE_CHECKING:
    from pathlib import Path


def make_dir(path: Path) -> None:
    """Create ``path`` (and its parents); an existing folder is fine."""
    path.mkdir(parents=True, exist_ok=True)


def write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it before returning.

    Raises:
        FileExistsError: ``path`` exists (the caller picks fresh names).
        OSError: The write or fsync failed (the partial file is removed).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, quotas)
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def read_file(path: Path) -> bytes:
    """The whole content of a (small) file."""
    return path.read_bytes()


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries: a rename is not durable until its folder is."""
    fsync_directory(path)


def rename(source: Path, target: Path) -> None:
    """Rename a file or folder; ``target`` must not exist as a folder.

    POSIX ``rename`` replaces an empty folder only, and a file only by a file:
    the commit protocol moves an existing checkpoint aside first.
    """
    source.rename(target)


def remove_tree(path: Path) -> None:
    """Delete a folder and everything in it (gone already is fine)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return


def remove_file(path: Path) -> None:
    """Delete one file (gone already is fine)."""
    path.unlink(missing_ok=True)


def list_names(path: Path) -> list[str]:
    """Names directly inside a folder, sorted."""
    return sorted(entry.name for entry in path.iterdir())


def exists(path: Path) -> bool:
    """Whether anything (a file, a folder, even a broken link) is at ``path``."""
    return os.path.lexists(path)


def version_key(path: Path) -> tuple[int, int, int] | None:
    """``(size, mtime, inode)`` of a file (every rewrite changes it); None if absent."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_size(path: Path) -> int | None:
    """Size of a regular file, or None when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder (links followed)."""
    return path.is_dir()
