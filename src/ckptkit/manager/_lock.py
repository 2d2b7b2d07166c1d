"""One writer per folder: the lock a ``CheckpointManager`` holds on its folder.

The lock is an exclusive ``flock`` on ``.ckptkit-manager.lock`` in the folder,
whose content names the holder (``{"host": ..., "pid": ..., "since": ...}``).
``flock`` belongs to an open file, so a second manager is refused whether it runs
in another process or in the same one, and the kernel drops it when its holder
dies, SIGKILL included. The file a dead holder leaves behind is therefore stale
whenever the lock can be taken on this host; a pid that is gone says the same
where the file system has no ``flock``. A file naming another host is respected:
``flock`` is advisory and need not reach across machines (NFS may not pass it
on), so only its content protects a folder shared between hosts.

``close`` deletes the file while still holding the lock; a manager that opened
the deleted file in between sees that its file is no longer the folder's (inode
check) and tries again on the new one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.atomic import is_process_alive
from ckptkit._file.format import MANAGER_LOCK_FILENAME, utc_now_iso
from ckptkit._file.streams import write_all
from ckptkit.errors import FolderLockedError

if TYPE_CHECKING:
    from io import FileIO
    from pathlib import Path

# Opening the lock file and locking it are two steps: a holder may delete the file
# in between (see the module docstring). Each retry means a holder just left.
_ATTEMPTS = 5
# More than any holder line; a longer file is not one of ours (read as no holder).
_MAX_HOLDER_BYTES = 4096
# flock refused by the file system itself (not held by someone else).
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})


@dataclass(frozen=True)
class LockHolder:
    """The process named in a lock file."""

    host: str
    pid: int
    since: str = ""

    def describe(self, me: LockHolder) -> str:
        """The holder in words ("process 12 on host a (this process)")."""
        words = f"process {self.pid} on host {self.host}"
        if self.host == me.host and self.pid == me.pid:
            words += " (this process)"
        return words + (f", since {self.since}" if self.since else "")

    def to_bytes(self) -> bytes:
        """The lock file's content."""
        text = json.dumps({"host": self.host, "pid": self.pid, "since": self.since})
        return (text + "\n").encode("utf-8")


def _parse_holder(data: bytes) -> LockHolder | None:
    """The holder a lock file names; None for an empty or foreign content."""
    try:
        fields = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(fields, dict):
        return None
    host, pid, since = fields.get("host"), fields.get("pid"), fields.get("since", "")
    if not isinstance(host, str) or type(pid) is not int or not isinstance(since, str):
        return None
    return LockHolder(host, pid, since)


def _read_holder(handle: FileIO) -> LockHolder | None:
    fs.seek(handle, 0)
    return _parse_holder(fs.read(handle, _MAX_HOLDER_BYTES))


def _is_current(path: Path, handle: FileIO) -> bool:
    """Whether ``handle`` is still the file at ``path`` (not deleted meanwhile)."""
    try:
        named = fs.stat(path)
    except FileNotFoundError:
        return False
    opened = fs.fstat(handle)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _locked(handle: FileIO) -> bool:
    """Take the ``flock``; False where the platform or file system has none.

    Raises:
        BlockingIOError: Another open file holds it.
    """
    try:
        return fs.lock(handle, exclusive=True, blocking=False)
    except OSError as error:  # BlockingIOError (EAGAIN) is no _NO_LOCKS errno
        if error.errno in _NO_LOCKS:
            return False
        raise


def _refusal(path: Path, holder: LockHolder | None) -> str:
    me = LockHolder(socket.gethostname(), os.getpid())
    who = "another process" if holder is None else holder.describe(me)
    text = (
        f"is in use by another CheckpointManager ({who}; lock file {path}). "
        "One writer per folder: close that manager (or end its run) first, "
        "or give this run its own folder"
    )
    if holder is not None and holder.host != me.host:
        text += (
            f". The lock cannot be checked from host {me.host}: if no run on "
            f"{holder.host} uses the folder any more, delete {path}"
        )
    return text


def _open(path: Path) -> FileIO:
    """Open (creating) the lock file.

    Raises:
        OSError: It cannot be created; for a read-only folder the message says
            how to read a step without a manager.
    """
    try:
        return fs.open_append(path)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise type(error)(
            error.errno,
            f"cannot create the lock file {path.name} in {path.parent} "
            f"({error.strerror}): a CheckpointManager writes its folder; to read "
            "a step of a read-only folder, use ckptkit.load(path) instead",
            str(path),
        ) from error


class FolderLock:
    """The exclusive hold of one manager on its folder, until :meth:`release`."""

    def __init__(self, path: Path, handle: FileIO) -> None:
        self.path = path
        self._handle: FileIO | None = handle

    @classmethod
    def acquire(cls, directory: Path) -> FolderLock:
        """Take the folder, or raise naming who holds it.

        Raises:
            FolderLockedError: Another manager (this process included) holds it.
            OSError: The lock file cannot be created or written.
        """
        path = directory / MANAGER_LOCK_FILENAME
        for _ in range(_ATTEMPTS):
            handle = _open(path)
            try:
                lock = cls._take(directory, path, handle)
            except BaseException:
                handle.close()
                raise
            if lock is not None:
                return lock
            handle.close()  # the holder deleted this file meanwhile: try again
        raise FolderLockedError(directory, _refusal(path, None))

    @classmethod
    def _take(cls, directory: Path, path: Path, handle: FileIO) -> FolderLock | None:
        try:
            has_flock = _locked(handle)
        except BlockingIOError:
            holder = _read_holder(handle)
            raise FolderLockedError(directory, _refusal(path, holder)) from None
        if not _is_current(path, handle):
            return None
        me = LockHolder(socket.gethostname(), os.getpid(), utc_now_iso())
        holder = _read_holder(handle)
        if holder is not None and not _is_stale(holder, me, has_flock=has_flock):
            raise FolderLockedError(directory, _refusal(path, holder))
        fs.truncate(handle, 0)
        write_all(handle, me.to_bytes())
        return cls(path, handle)

    def release(self) -> None:
        """Delete the lock file and let go of the folder; again does nothing."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            # Deleted while still locked: a manager waiting on this very file
            # then finds it is no longer the folder's and takes a new one.
            if _is_current(self.path, handle):
                fs.unlink(self.path, missing_ok=True)
        finally:
            with contextlib.suppress(OSError):
                handle.close()  # releases the flock


def _is_stale(holder: LockHolder, me: LockHolder, *, has_flock: bool) -> bool:
    """Whether the holder named in a lock file we could ``flock`` is gone.

    On this host, a live holder would still hold the ``flock``: taking it proves
    the holder gone (even if its pid was reused since). Without ``flock``, the pid
    must be gone. Another host cannot be checked from here.
    """
    return holder.host == me.host and (has_flock or not is_process_alive(holder.pid))
