"""Whole reads and writes, looping over the I/O seam's single calls.

``fs.read`` and ``fs.write`` may move fewer bytes than asked (a signal, a full
disk): a short read or write is never taken for the whole here.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ckptkit._file import fs

if TYPE_CHECKING:
    from typing_extensions import Buffer


def write_all(handle: fs.Handle, data: Buffer) -> None:
    """Write every byte of ``data``, looping over short writes.

    Raises:
        OSError: A write failed (``ENOSPC``, ``EIO``, ``EDQUOT``, ...), or made no
            progress (``EIO``): a short write is never taken as done.
    """
    view = memoryview(data).cast("B")
    total, done = len(view), 0
    while done < total:
        try:
            count = fs.write(handle, view[done:])
        except InterruptedError:  # a signal before any byte was written: retry
            continue
        if not count:
            raise OSError(
                errno.EIO,
                f"write made no progress after {done} of {total} bytes",
                getattr(handle, "name", None),
            )
        done += count


def read_exactly(handle: fs.Handle, count: int) -> bytes:
    """Up to ``count`` bytes: fewer only at the end of the file."""
    chunks: list[bytes] = []
    while count > 0:
        chunk = fs.read(handle, count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)
