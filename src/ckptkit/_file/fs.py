"""The one I/O seam: every file-system call ckptkit makes goes through here.

Callers reach these functions through the module (``from ckptkit._file import fs``;
``fs.write(handle, data)``), never by importing the names, so a test can make
any single call fail by replacing one attribute (``monkeypatch.setattr(fs,
"write", failing)``): ENOSPC, EIO, EDQUOT, EINTR, a short write, a failing
fsync, rename or directory fsync. :data:`OPERATIONS` lists every operation by kind.

Each operation runs its raw call, :data:`SYSTEM_CALLS` ``[name]``, again when a
signal interrupts it (``InterruptedError``, EINTR): an interrupted call had no
effect, so running it again is always right. Python already does so inside each
system call (PEP 475); the seam does it once more for calls that surface EINTR
anyway, and so that a test replacing a raw call (``monkeypatch.setitem(
fs.SYSTEM_CALLS, "fsync", failing)``) fails it beneath the retry. ``close`` is
the exception: POSIX leaves a descriptor's state unspecified after an interrupted
``close``, and Linux has already released it, so it is never repeated.

Kinds and their functions:

- open: :func:`open_read` (regular files only: a FIFO or device is refused with
  ``special_files.NotRegularFileError``, never waited on), :func:`open_new`
  (exclusive create), :func:`open_append`
- read: :func:`read`, :func:`read_into`, :func:`seek`, :func:`map_private` (mmap)
- write: :func:`write` (one call, may be short: ``streams.write_all`` loops over
  it until every byte is written), :func:`truncate`
- sync: :func:`fsync`, :func:`fsync_directory`
- close: :func:`close` (of handles that were written; read-only handles are
  closed by their ``with`` block: a failing close after reading loses nothing)
- rename and delete: :func:`replace`, :func:`link`, :func:`unlink`, :func:`mkdir`,
  :func:`remove_tree` (a sharded checkpoint folder, ``ckptkit.distributed``)
- list and stat: :func:`list_files`, :func:`list_names`, :func:`walk`,
  :func:`stat`, :func:`fstat`, :func:`exists`, :func:`lexists`, :func:`is_dir`,
  :func:`is_file`, :func:`is_symlink`, :func:`readlink`, :func:`realpath`,
  :func:`same_file`
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

import contextlib
import functools
import mmap
import os
import shutil
from typing import IO, TYPE_CHECKING, Any, Final, ParamSpec, TypeAlias, TypeVar, cast

from ckptkit._file.special_files import check_regular

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from io import FileIO
    from pathlib import Path

    from typing_extensions import Buffer

Handle = IO[bytes]
#: What :func:`map_private` returns.
MappedFile: TypeAlias = mmap.mmap

#: The raw call behind each operation (see the module docstring), by name.
SYSTEM_CALLS: dict[str, Callable[..., Any]] = {}
#: Every operation of the seam, by kind (what a fault-injection suite iterates);
#: each operation names its kind where it is defined.
OPERATIONS: dict[str, list[str]] = {}
#: An operation interrupted this many times in a row gives up (raises the
#: ``InterruptedError``): a signal storm must not become a hang.
MAX_INTERRUPTED_RETRIES: Final = 1000

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _operation(
    kind: str, *, retry: bool = True
) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Register a raw call of ``kind`` in :data:`SYSTEM_CALLS`; the seam runs it."""

    def register(raw: Callable[_P, _T]) -> Callable[_P, _T]:
        name = raw.__name__
        SYSTEM_CALLS[name] = raw
        OPERATIONS.setdefault(kind, []).append(name)

        @functools.wraps(raw)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            for _ in range(MAX_INTERRUPTED_RETRIES - 1 if retry else 0):
                try:
                    return cast("_T", SYSTEM_CALLS[name](*args, **kwargs))
                except InterruptedError:
                    continue
            return cast("_T", SYSTEM_CALLS[name](*args, **kwargs))

        return run

    return register


def _nonblocking_opener(name: str, flags: int) -> int:
    return os.open(name, flags | os.O_NONBLOCK)


@_operation("open")
def open_read(path: Path) -> FileIO:
    """Open a regular file for reading, unbuffered (every read is one system call).

    Raises:
        NotRegularFileError: ``path`` is a FIFO, socket or device.
    """
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    # It has no effect on a regular file, and is cleared once the file is one.
    handle: FileIO = open(path, "rb", buffering=0, opener=_nonblocking_opener)  # noqa: SIM115
    try:
        check_regular(os.fstat(handle.fileno()).st_mode, path)
        os.set_blocking(handle.fileno(), True)
    except BaseException:
        handle.close()
        raise
    return handle


@_operation("open")
def open_new(path: Path) -> FileIO:
    """Create ``path`` for writing; fail if it exists (``O_EXCL``), unbuffered."""
    # buffering=0: large tensor writes go straight to the kernel, no extra copy.
    return path.open("xb", buffering=0)


def _append_opener(name: str, flags: int) -> int:
    return os.open(name, flags, 0o644)


@_operation("open")
def open_append(path: Path) -> FileIO:
    """Open (creating, mode 0644) for appending and reading: ``O_APPEND|O_RDWR``."""
    # Path.open takes no opener; the opener creates the file 0644 (less the umask).
    return open(path, "ab+", buffering=0, opener=_append_opener)


@_operation("read")
def read(handle: Handle, count: int = -1) -> bytes:
    """One read of up to ``count`` bytes (``-1``: to the end); ``b""`` at the end."""
    return handle.read(count)


@_operation("read")
def read_into(handle: FileIO, buffer: memoryview) -> int:
    """One read into ``buffer``; returns the count (0 at the end of the file)."""
    return handle.readinto(buffer) or 0


@_operation("read")
def seek(handle: Handle, offset: int, whence: int = os.SEEK_SET) -> int:
    """Move the file position; returns the new position."""
    return handle.seek(offset, whence)


@_operation("read")
def map_private(handle: FileIO) -> MappedFile:
    """Map the whole file copy-on-write: writes to the map never reach the file."""
    return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)


@_operation("write")
def write(handle: Handle, data: Buffer) -> int | None:
    """One write call; returns how many bytes the kernel took (may be fewer)."""
    return handle.write(data)


@_operation("write")
def truncate(handle: Handle, size: int) -> None:
    """Cut an open file back to ``size`` bytes (undoes a partial append)."""
    os.ftruncate(handle.fileno(), size)


@_operation("sync")
def fsync(handle: Handle) -> None:
    """Flush a file's data and metadata to the disk."""
    os.fsync(handle.fileno())


@_operation("sync")
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


@_operation("close", retry=False)
def close(handle: Handle) -> None:
    """Close a handle that was written to (a delayed write error surfaces here)."""
    handle.close()


@_operation("rename")
def replace(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target`` atomically (``rename(2)``)."""
    source.replace(target)


@_operation("rename")
def link(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (fails if ``target`` exists)."""
    os.link(source, target)


@_operation("rename")
def unlink(path: Path, *, missing_ok: bool = False) -> None:
    """Delete a file."""
    path.unlink(missing_ok=missing_ok)


@_operation("rename")
def mkdir(path: Path) -> None:
    """Create a folder and its parents; an existing folder is fine."""
    path.mkdir(parents=True, exist_ok=True)


@_operation("rename")
def remove_tree(path: Path) -> None:
    """Delete a folder and everything in it; a folder already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


@_operation("list")
def list_files(directory: Path) -> list[str]:
    """Names of the files (links to files included) directly in one folder.

    In the order the OS gives (``os.scandir``); sort them where order matters.
    """
    with os.scandir(directory) as entries:
        return [entry.name for entry in entries if entry.is_file()]


@_operation("list")
def list_names(directory: Path) -> list[str]:
    """Names of every entry (files, folders, links) directly in one folder, sorted."""
    with os.scandir(directory) as entries:
        return sorted(entry.name for entry in entries)


@_operation("list")
def walk(
    top: Path, on_error: Callable[[OSError], None] | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` without following links to folders."""
    return os.walk(top, onerror=on_error)


@_operation("list")
def stat(path: Path) -> os.stat_result:
    """``stat(2)`` of a path (following links)."""
    return path.stat()


@_operation("list")
def fstat(handle: Handle) -> os.stat_result:
    """``fstat(2)`` of an open file."""
    return os.fstat(handle.fileno())


@_operation("list")
def exists(path: Path) -> bool:
    """Whether the path exists (following links)."""
    return path.exists()


@_operation("list")
def lexists(path: Path) -> bool:
    """Whether anything is at ``path``: a file, a folder, even a broken link."""
    return os.path.lexists(path)


@_operation("list")
def is_dir(path: Path) -> bool:
    """Whether the path is a folder (following links)."""
    return path.is_dir()


@_operation("list")
def is_file(path: Path) -> bool:
    """Whether the path is a regular file (following links)."""
    return path.is_file()


@_operation("list")
def is_symlink(path: Path) -> bool:
    """Whether the path itself is a symbolic link."""
    return path.is_symlink()


@_operation("list")
def readlink(path: Path) -> Path:
    """Where a symbolic link points."""
    return path.readlink()


@_operation("list")
def realpath(path: Path) -> str:
    """The canonical absolute path (links resolved)."""
    return os.path.realpath(path)


@_operation("list")
def same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths name the same file (device and inode)."""
    return first.samefile(second)


@_operation("lock")
def lock(handle: Handle, *, exclusive: bool, blocking: bool = True) -> bool:
    """``flock`` the file until the handle is closed (False: the platform has none).

    Raises:
        BlockingIOError: ``blocking=False`` and another open file holds the lock.
        OSError: The file system refuses locks (``ENOLCK``, ``EOPNOTSUPP``).
    """
    if fcntl is None:  # pragma: no cover - Windows
        return False  # type: ignore[unreachable]
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    fcntl.flock(handle.fileno(), operation | (0 if blocking else fcntl.LOCK_NB))
    return True


_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


@_operation("memory")
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
