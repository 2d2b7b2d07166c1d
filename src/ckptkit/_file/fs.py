"""The one I/O seam: every file-system call ckptkit makes goes through here.

Callers reach these functions through the module (``from ckptkit._file import fs``;
``fs.write_all(handle, data)``), never by importing the names, so a test can make
any single call fail by replacing one attribute (``monkeypatch.setattr(fs,
"write", failing)``): ENOSPC, EIO, EDQUOT, EINTR, a short write, a failing
fsync, rename or directory fsync. :data:`OPERATIONS` lists every operation by kind.

Kinds and their functions:

- open: :func:`open_read`, :func:`open_new` (exclusive create), :func:`open_append`
- read: :func:`read`, :func:`read_into`, :func:`seek`, :func:`map_private` (mmap)
- write: :func:`write` (one call, may be short), :func:`write_all` (loops over
  :func:`write` until every byte is written: a short write is never taken as done),
  :func:`truncate`
- sync: :func:`fsync`, :func:`fsync_directory`
- close: :func:`close` (of handles that were written; read-only handles are
  closed by their ``with`` block: a failing close after reading loses nothing)
- rename and delete: :func:`replace`, :func:`link`, :func:`unlink`, :func:`mkdir`
- list and stat: :func:`list_files`, :func:`walk`, :func:`stat`, :func:`fstat`,
  :func:`exists`, :func:`is_dir`, :func:`is_file`, :func:`is_symlink`,
  :func:`readlink`, :func:`realpath`, :func:`same_file`
- lock: :func:`lock` (``flock``; on the ledger itself, and on the one lock file
  a ``CheckpointManager`` keeps in its folder)
- memory: :func:`map_anonymous` (no file: the host buffer of asynchronous saves,
  here because it is an ``mmap``)

Reads done by libraries (``torch.load`` of legacy pickles, ``zipfile``) read
through a handle opened here with :func:`open_read`; ``torch.load(...,
mmap=True)`` reopens the path itself after that open succeeded. Helpers for tests
(``ckptkit.testing``) make their temporary folders with ``tempfile``.
"""

from __future__ import annotations

import errno
import mmap
import os
from typing import IO, TYPE_CHECKING, Final, TypeAlias

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from io import FileIO
    from pathlib import Path

    from typing_extensions import Buffer

#: Every operation of the seam, by kind (what a fault-injection suite iterates).
OPERATIONS: Final = {
    "open": ("open_read", "open_new", "open_append"),
    "read": ("read", "read_into", "seek", "map_private"),
    "write": ("write", "write_all", "truncate"),
    "sync": ("fsync", "fsync_directory"),
    "close": ("close",),
    "rename": ("replace", "link", "unlink", "mkdir"),
    "list": (
        "list_files",
        "walk",
        "stat",
        "fstat",
        "exists",
        "is_dir",
        "is_file",
        "is_symlink",
        "readlink",
        "realpath",
        "same_file",
    ),
    "lock": ("lock",),
    "memory": ("map_anonymous",),
}

Handle = IO[bytes]
#: What :func:`map_private` returns.
MappedFile: TypeAlias = mmap.mmap


# --- open ----------------------------------------------------------------------


def open_read(path: Path) -> FileIO:
    """Open a file for reading, unbuffered (every read is one system call)."""
    return path.open("rb", buffering=0)


def open_new(path: Path) -> FileIO:
    """Create ``path`` for writing; fail if it exists (``O_EXCL``), unbuffered."""
    # buffering=0: large tensor writes go straight to the kernel, no extra copy.
    return path.open("xb", buffering=0)


def _append_opener(name: str, flags: int) -> int:
    return os.open(name, flags, 0o644)


def open_append(path: Path) -> FileIO:
    """Open (creating, mode 0644) for appending and reading: ``O_APPEND|O_RDWR``."""
    # Path.open takes no opener; the opener creates the file 0644 (less the umask).
    handle: FileIO = open(path, "ab+", buffering=0, opener=_append_opener)  # noqa: SIM115
    return handle


# --- read ----------------------------------------------------------------------


def read(handle: Handle, count: int = -1) -> bytes:
    """One read of up to ``count`` bytes (``-1``: to the end); ``b""`` at the end."""
    return handle.read(count)


def read_into(handle: FileIO, buffer: memoryview) -> int:
    """One read into ``buffer``; returns the count (0 at the end of the file)."""
    return handle.readinto(buffer) or 0


def seek(handle: Handle, offset: int, whence: int = os.SEEK_SET) -> int:
    """Move the file position; returns the new position."""
    return handle.seek(offset, whence)


def map_private(handle: FileIO) -> MappedFile:
    """Map the whole file copy-on-write: writes to the map never reach the file."""
    return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)


# --- write ---------------------------------------------------------------------


def write(handle: Handle, data: Buffer) -> int | None:
    """One write call; returns how many bytes the kernel took (may be fewer)."""
    return handle.write(data)


def write_all(handle: Handle, data: Buffer) -> None:
    """Write every byte of ``data``, looping over short writes.

    Raises:
        OSError: A write failed (``ENOSPC``, ``EIO``, ``EDQUOT``, ...), or made no
            progress (``EIO``): a short write is never taken as done.
    """
    view = memoryview(data).cast("B")
    total, done = len(view), 0
    while done < total:
        try:
            count = write(handle, view[done:])
        except InterruptedError:  # a signal before any byte was written: retry
            continue
        if not count:
            raise OSError(
                errno.EIO,
                f"write made no progress after {done} of {total} bytes",
                getattr(handle, "name", None),
            )
        done += count


def truncate(handle: Handle, size: int) -> None:
    """Cut (or extend with zeros) an open file to ``size`` bytes."""
    handle.truncate(size)


# --- sync and close ------------------------------------------------------------


def fsync(handle: Handle) -> None:
    """Flush a file's data and metadata to the disk."""
    os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries: a rename is not durable until they are.

    A no-op where the OS cannot open folders.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close(handle: Handle) -> None:
    """Close a handle that was written to (a delayed write error surfaces here)."""
    handle.close()


# --- rename and delete ---------------------------------------------------------


def replace(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target`` atomically (``rename(2)``)."""
    source.replace(target)


def link(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (fails if ``target`` exists)."""
    os.link(source, target)


def unlink(path: Path, *, missing_ok: bool = False) -> None:
    """Delete a file."""
    path.unlink(missing_ok=missing_ok)


def mkdir(path: Path) -> None:
    """Create a folder and its parents; an existing folder is fine."""
    path.mkdir(parents=True, exist_ok=True)


# --- list and stat -------------------------------------------------------------


def list_files(directory: Path) -> list[str]:
    """Names of the files (links to files included) directly in one folder.

    In the order the OS gives (``os.scandir``); sort them where order matters.
    """
    with os.scandir(directory) as entries:
        return [entry.name for entry in entries if entry.is_file()]


def walk(
    top: Path, on_error: Callable[[OSError], None] | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` without following links to folders."""
    return os.walk(top, onerror=on_error)


def stat(path: Path) -> os.stat_result:
    """``stat(2)`` of a path (following links)."""
    return path.stat()


def fstat(handle: Handle) -> os.stat_result:
    """``fstat(2)`` of an open file."""
    return os.fstat(handle.fileno())


def exists(path: Path) -> bool:
    """Whether the path exists (following links)."""
    return path.exists()


def is_dir(path: Path) -> bool:
    """Whether the path is a folder (following links)."""
    return path.is_dir()


def is_file(path: Path) -> bool:
    """Whether the path is a regular file (following links)."""
    return path.is_file()


def is_symlink(path: Path) -> bool:
    """Whether the path itself is a symbolic link."""
    return path.is_symlink()


def readlink(path: Path) -> Path:
    """Where a symbolic link points."""
    return path.readlink()


def realpath(path: Path) -> str:
    """The canonical absolute path (links resolved)."""
    return os.path.realpath(path)


def same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths name the same file (device and inode)."""
    return first.samefile(second)


# --- lock ----------------------------------------------------------------------


def lock(handle: Handle, *, exclusive: bool, blocking: bool = True) -> bool:
    """``flock`` the file until the handle is closed.

    Returns:
        True once locked; False where the platform has no ``flock`` (no lock).

    Raises:
        BlockingIOError: ``blocking=False`` and another open file holds the lock.
        OSError: The file system refuses locks (``ENOLCK``, ``EOPNOTSUPP``).
    """
    if fcntl is None:  # pragma: no cover - Windows
        return False  # type: ignore[unreachable]
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    fcntl.flock(handle.fileno(), operation | (0 if blocking else fcntl.LOCK_NB))
    return True


# --- memory --------------------------------------------------------------------

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


def map_anonymous(nbytes: int) -> MappedFile:
    """Private anonymous memory whose pages the kernel faults in at once.

    ``MAP_POPULATE`` faults every page in one call where the OS has it: mapping
    and copying 0.5 GiB took 0.82-1.05 s that way against 1.6-1.9 s with one
    fault per page during the copy (the two-core development VM, alone).
    """
    anonymous = getattr(mmap, "MAP_ANONYMOUS", None)
    if anonymous is None:  # pragma: no cover - Windows: -1 alone is anonymous
        return mmap.mmap(-1, nbytes)
    flags = mmap.MAP_PRIVATE | anonymous | _MAP_POPULATE
    return mmap.mmap(-1, nbytes, flags=flags)
