"""Reading a file without ever asking for more bytes than it has left.

``read(n)`` of a plain file allocates ``n`` bytes before it knows how many there
are: a length field in a crafted file (a pickle's string length, a zip's central
directory size) could make one small file allocate gigabytes. Libraries that read
legacy files (``torch.load``, ``zipfile``, ``pickletools``) get a
:class:`BoundedReader` instead of the open file.
"""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.streams import read_exactly

if TYPE_CHECKING:
    from typing_extensions import Buffer


class BoundedReader(io.RawIOBase):
    """A buffered, read-only view of an open file that never reads past its end.

    Every read is first cut to what is left (see the module doc). Small reads come
    from a read-ahead buffer: a pickle is read an opcode (a few bytes) at a time.
    """

    _CHUNK = 1 << 16

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle
        self.size = fs.fstat(handle).st_size  # the file's, in bytes, taken once
        self._position = 0
        self._buffer = b""
        self._buffer_start = 0
        self.name = getattr(handle, "name", None)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (as ``IOBase.seek``)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}
        position = base[whence] + offset
        if position < 0:
            msg = f"negative seek position {position}"
            raise ValueError(msg)
        self._position = position
        return position

    def rewind(self) -> None:
        self._position = 0

    def readinto(self, buffer: Buffer) -> int:
        """Read into ``buffer``, at most up to the end of the file."""
        view = memoryview(buffer).cast("B")
        data = self.take(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        return self.take(-1 if size is None else size)

    def readall(self) -> bytes:
        return self.take(-1)

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes (all that is left for -1), cut to the file's end."""
        left = max(self.size - self._position, 0)
        count = left if size < 0 else min(size, left)
        start = self._position - self._buffer_start
        if not (start >= 0 and start + count <= len(self._buffer)):
            if count >= self._CHUNK:
                data = self._read_at(self._position, count)
                self._position += len(data)
                return data
            self._buffer = self._read_at(self._position, min(self._CHUNK, left))
            self._buffer_start, start = self._position, 0
        data = self._buffer[start : start + count]
        self._position += len(data)
        return data

    def _read_at(self, position: int, count: int) -> bytes:
        fs.seek(self._handle, position)
        return read_exactly(self._handle, count)
