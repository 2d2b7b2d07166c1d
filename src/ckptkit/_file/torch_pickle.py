"""What a legacy ``torch.save`` file declares, read without running its pickle.

Before ``torch.load`` runs a legacy pickle (always with ``weights_only=True``),
ckptkit reads the pickle's opcodes with ``pickletools`` (which parses, never
executes) and follows the stack just far enough to find the storages the pickle
declares: ``('storage', <torch.FloatStorage>, key, location, numel, ...)``. That
gives ``inspect`` a list of the stored buffers, and lets the reader refuse a file
whose declarations exceed its own size before torch allocates them (a 1 KB file
declaring a 4 TB storage). Every read goes through :class:`BoundedReader`, which
never asks for more bytes than the file has left, so a crafted length field
cannot make a read allocate more than the file either.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Final

from ckptkit._file import fs
from ckptkit.errors import CheckpointCorruptError

if TYPE_CHECKING:
    from pathlib import Path

    from typing_extensions import Buffer

#: First bytes of a zip archive: the container ``torch.save`` writes since 1.6.
ZIP_MAGIC: Final = b"PK\x03\x04"

# The dtype of each storage class a torch pickle names (torch.<name>). Spelled
# out: asking torch's TypedStorage classes for theirs warns (deprecated).
_STORAGE_DTYPES: Final = {
    "UntypedStorage": "uint8",
    "ByteStorage": "uint8",
    "CharStorage": "int8",
    "ShortStorage": "int16",
    "IntStorage": "int32",
    "LongStorage": "int64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "BoolStorage": "bool",
    "QUInt8Storage": "quint8",
    "QInt8Storage": "qint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}
_ITEM_SIZES: Final = {
    "uint8": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
    "bool": 1,
    "quint8": 1,
    "qint8": 1,
    "qint32": 4,
    "quint4x2": 1,
    "quint2x4": 1,
}


@dataclass(frozen=True)
class StorageDeclaration:
    """One storage a torch pickle declares.

    Attributes:
        key: Its key (``data/<key>`` in a zip archive).
        dtype: torch dtype name (``"unknown"`` for a storage class not known here).
        numel: Declared number of elements.
    """

    key: str
    dtype: str
    numel: int

    @property
    def nbytes(self) -> int:
        """Declared size in bytes (at least ``numel``: unknown dtypes count 1)."""
        return self.numel * _ITEM_SIZES.get(self.dtype, 1)


class BoundedReader(io.RawIOBase):
    """A read-only view of an open file that never reads past its end.

    ``read(n)`` of a plain file allocates ``n`` bytes before it knows how many
    there are; here ``n`` is first cut to what is left, so no read allocates more
    than the file holds.

    Args:
        handle: The open file (position and size taken from it).
    """

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle
        self._size = fs.fstat(handle).st_size
        self.name = getattr(handle, "name", None)

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self._size

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (as ``IOBase.seek``)."""
        return fs.seek(self._handle, offset, whence)

    def tell(self) -> int:
        """The position."""
        return fs.seek(self._handle, 0, io.SEEK_CUR)

    def readinto(self, buffer: Buffer) -> int:
        """Read into ``buffer``, at most up to the end of the file."""
        view = memoryview(buffer).cast("B")
        data = self.take(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for -1), cut to the file's end."""
        return self.take(-1 if size is None else size)

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes (all that is left for -1), cut to the file's end."""
        left = max(self._size - self.tell(), 0)
        count = left if size < 0 else min(size, left)
        chunks: list[bytes] = []
        while count > 0:
            chunk = fs.read(self._handle, count)
            if not chunk:
                break
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def readall(self) -> bytes:
        """Everything left."""
        return self.take(-1)


class _ScanStream:
    """Buffered reads for ``pickletools`` (byte by byte) over a BoundedReader."""

    _CHUNK = 1 << 16

    def __init__(self, reader: BoundedReader) -> None:
        self._reader = reader
        self._buffer = bytearray()

    def _fill(self, count: int) -> None:
        while len(self._buffer) < count:
            chunk = self._reader.take(max(count - len(self._buffer), self._CHUNK))
            if not chunk:
                return
            self._buffer += chunk

    def _pop(self, count: int) -> bytes:
        self._fill(count)
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def read(self, count: int = -1) -> bytes:
        return self._pop(self._reader.size if count < 0 else count)

    def readline(self) -> bytes:
        start = 0
        while (end := self._buffer.find(b"\n", start)) < 0:
            start = len(self._buffer)
            self._fill(start + 1)
            if len(self._buffer) == start:
                return self._pop(start)
        return self._pop(end + 1)


_MARK = object()
_UNKNOWN = object()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


class _Stack:
    """The pickle machine's stack, holding constants and what stands for the rest."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.memo: dict[Any, Any] = {}

    def pop(self) -> Any:
        if not self.items:
            msg = "pickle stack underflow"
            raise ValueError(msg)
        return self.items.pop()

    def pop_mark(self) -> list[Any]:
        popped: list[Any] = []
        while (item := self.pop()) is not _MARK:
            popped.append(item)
        popped.reverse()
        return popped

    def generic(self, opcode: pickletools.OpcodeInfo) -> None:
        """Apply any other opcode's stack effect, its result unknown."""
        before = opcode.stack_before
        if pickletools.markobject in before:
            self.pop_mark()
            for _ in range(before.index(pickletools.markobject)):
                self.pop()
        else:
            for _ in before:
                self.pop()
        self.items.extend(_UNKNOWN for _ in opcode.stack_after)


_CONSTANTS: Final = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
        "NONE",
    }
)
_BOOLEANS: Final = {"NEWTRUE": True, "NEWFALSE": False}
_TUPLE_SIZES: Final = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


def _declaration(persistent_id: Any) -> StorageDeclaration | None:
    """The storage a persistent id names, if it has torch's form."""
    if not isinstance(persistent_id, tuple) or len(persistent_id) < 5:  # noqa: PLR2004
        return None
    tag, storage_type, key, _location, numel = persistent_id[:5]
    if tag != "storage" or type(numel) is not int or not isinstance(key, str):
        return None
    dtype = "unknown"
    if isinstance(storage_type, _Global) and storage_type.module.startswith("torch"):
        dtype = _STORAGE_DTYPES.get(storage_type.name.rpartition(".")[2], "unknown")
    return StorageDeclaration(key, dtype, numel)


def _step(stack: _Stack, opcode: pickletools.OpcodeInfo, arg: Any) -> Any:  # noqa: C901, PLR0912
    """Run one opcode on ``stack``; return a persistent id it consumed, if any."""
    name = opcode.name
    if name in _CONSTANTS:
        stack.items.append(arg)
    elif name in _BOOLEANS:
        stack.items.append(_BOOLEANS[name])
    elif name == "MARK":
        stack.items.append(_MARK)
    elif name == "GLOBAL":
        module, _, qualname = str(arg).partition(" ")
        stack.items.append(_Global(module, qualname))
    elif name == "STACK_GLOBAL":
        qualname, module = stack.pop(), stack.pop()
        stack.items.append(_Global(str(module), str(qualname)))
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        stack.memo[arg] = stack.items[-1] if stack.items else _UNKNOWN
    elif name == "MEMOIZE":
        stack.memo[len(stack.memo)] = stack.items[-1] if stack.items else _UNKNOWN
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.items.append(stack.memo.get(arg, _UNKNOWN))
    elif name == "TUPLE":
        stack.items.append(tuple(stack.pop_mark()))
    elif name in _TUPLE_SIZES:
        items = [stack.pop() for _ in range(_TUPLE_SIZES[name])]
        stack.items.append(tuple(reversed(items)))
    elif name == "DUP":
        stack.items.append(stack.items[-1] if stack.items else _UNKNOWN)
    elif name == "BINPERSID":
        persistent_id = stack.pop()
        stack.items.append(_UNKNOWN)
        return persistent_id
    elif name not in ("PROTO", "FRAME", "STOP"):
        stack.generic(opcode)
    return None


def _scan_pickle(stream: IO[bytes], found: dict[str, StorageDeclaration]) -> None:
    """Read one pickle from ``stream`` (up to its STOP), collecting declarations."""
    stack = _Stack()
    for opcode, arg, _position in pickletools.genops(stream):
        persistent_id = _step(stack, opcode, arg)
        declaration = _declaration(persistent_id)
        if declaration is not None:
            found.setdefault(declaration.key, declaration)


def _zip_declarations(reader: BoundedReader) -> list[StorageDeclaration]:
    found: dict[str, StorageDeclaration] = {}
    with zipfile.ZipFile(reader) as archive:
        members = archive.infolist()
        for member in members:
            if member.file_size > reader.size:
                msg = (
                    f"zip member {member.filename!r} declares {member.file_size} "
                    f"bytes in a file of {reader.size}"
                )
                raise ValueError(msg)
        pickles = [m for m in members if m.filename.endswith("/data.pkl")]
        if pickles:
            with archive.open(pickles[0]) as stream:
                _scan_pickle(stream, found)
    return list(found.values())


def _bare_declarations(reader: BoundedReader) -> list[StorageDeclaration]:
    """An old-format file: magic, protocol and system pickles, then the state's."""
    found: dict[str, StorageDeclaration] = {}
    stream = _ScanStream(reader)
    for _ in range(4):
        _scan_pickle(stream, found)  # type: ignore[arg-type]
    return list(found.values())


def declared_storages(handle: IO[bytes], path: Path) -> list[StorageDeclaration]:
    """The storages a torch pickle declares, checked against the file's size.

    Args:
        handle: The open file (its position is moved).
        path: The file's path, for messages.

    Returns:
        Each storage once, in the order declared.

    Raises:
        CheckpointCorruptError: The file cannot be parsed, or declares more bytes
            than it holds (what would make ``torch.load`` allocate them).
    """
    reader = BoundedReader(handle)
    try:
        fs.seek(handle, 0)
        head = reader.take(len(ZIP_MAGIC))
        fs.seek(handle, 0)
        if head == ZIP_MAGIC:
            found = _zip_declarations(reader)
        else:
            found = _bare_declarations(reader)
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError, IndexError) as error:
        reason = f"unreadable torch pickle: {str(error).splitlines()[0][:200]}"
        raise CheckpointCorruptError(path, reason) from error
    declared = sum(item.nbytes for item in found)
    if declared > reader.size:
        reason = (
            f"torch pickle declares storages of {declared} bytes in a file of "
            f"{reader.size}; the file is damaged or crafted, and is not loaded"
        )
        raise CheckpointCorruptError(path, reason)
    return found
