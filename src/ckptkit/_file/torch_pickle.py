"""What a legacy ``torch.save`` file declares, read without running its pickle.

Before ``torch.load`` runs a legacy pickle (always with ``weights_only=True``),
ckptkit reads the pickle's opcodes with ``pickletools`` (which parses, never
executes) and follows the stack just far enough to find the storages the pickle
declares: ``('storage', <torch.FloatStorage>, key, location, numel, ...)``. That
gives ``inspect`` a list of the stored buffers, and lets the reader refuse a file
whose declarations exceed its own size before torch allocates them (a 1 KB file
declaring a 4 TB storage). Every read goes through ``bounded.BoundedReader``,
which never asks for more bytes than the file has left, so a crafted length
field cannot make a read allocate more than the file either.
"""

from __future__ import annotations

import pickletools
import zipfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Final

from ckptkit._file.bounded import BoundedReader
from ckptkit.errors import CheckpointCorruptError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


#: First bytes of a zip archive: the container ``torch.save`` writes since 1.6.
ZIP_MAGIC: Final = b"PK\x03\x04"

# The dtype and item size of each storage class a torch pickle names
# (torch.<name>). Spelled out: asking torch's TypedStorage classes for theirs
# warns (deprecated).
_STORAGE_TYPES: Final = {
    "UntypedStorage": ("uint8", 1),
    "ByteStorage": ("uint8", 1),
    "CharStorage": ("int8", 1),
    "ShortStorage": ("int16", 2),
    "IntStorage": ("int32", 4),
    "LongStorage": ("int64", 8),
    "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2),
    "FloatStorage": ("float32", 4),
    "DoubleStorage": ("float64", 8),
    "ComplexFloatStorage": ("complex64", 8),
    "ComplexDoubleStorage": ("complex128", 16),
    "BoolStorage": ("bool", 1),
    "QUInt8Storage": ("quint8", 1),
    "QInt8Storage": ("qint8", 1),
    "QInt32Storage": ("qint32", 4),
    "QUInt4x2Storage": ("quint4x2", 1),
    "QUInt2x4Storage": ("quint2x4", 1),
}
_ITEM_SIZES: Final = dict(_STORAGE_TYPES.values())


@dataclass(frozen=True)
class StorageDeclaration:
    """One storage a torch pickle declares (``key``: ``data/<key>`` in a zip).

    ``dtype`` is a torch dtype name, ``"unknown"`` for a storage class not known here.
    """

    key: str
    dtype: str
    numel: int

    @property
    def nbytes(self) -> int:
        """Declared size in bytes (at least ``numel``: unknown dtypes count 1)."""
        return self.numel * _ITEM_SIZES.get(self.dtype, 1)


_MARK = object()
_UNKNOWN = object()
# Opcodes that push their argument as it is.
_CONSTANTS: Final = (
    *("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"),
    *("STRING", "BINSTRING", "SHORT_BINSTRING"),
    *("UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"),
    *("FLOAT", "BINFLOAT", "NONE"),
)


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


def _declaration(persistent_id: Any) -> StorageDeclaration | None:
    """The storage a persistent id names, if it has torch's form."""
    if not isinstance(persistent_id, tuple) or len(persistent_id) < 5:  # noqa: PLR2004
        return None
    tag, storage_type, key, _location, numel = persistent_id[:5]
    if tag != "storage" or type(numel) is not int or not isinstance(key, str):
        return None
    dtype = "unknown"
    if isinstance(storage_type, _Global) and storage_type.module.startswith("torch"):
        name = storage_type.name.rpartition(".")[2]
        dtype = _STORAGE_TYPES.get(name, ("unknown", 1))[0]
    return StorageDeclaration(key, dtype, numel)


class _Machine:
    """The pickle machine's stack and memo, holding constants and "unknown".

    Only what leads to a persistent id is followed: constants, globals, tuples,
    the memo. Every other opcode just has its stack effect (from pickletools),
    its result unknown. Nothing is ever called or imported.
    """

    def __init__(self, found: dict[str, StorageDeclaration]) -> None:
        self.stack: list[Any] = []
        self.memo: dict[Any, Any] = {}
        self.found = found

    def pop(self) -> Any:
        if not self.stack:
            msg = "pickle stack underflow"
            raise ValueError(msg)
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        stack = self.stack
        for index in range(len(stack) - 1, -1, -1):
            if stack[index] is _MARK:
                items = stack[index + 1 :]
                del stack[index:]
                return items
        msg = "pickle MARK missing"
        raise ValueError(msg)

    def top(self) -> Any:
        return self.stack[-1] if self.stack else _UNKNOWN

    def run(self, name: str, arg: Any) -> None:
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, arg)
            return
        effect = _EFFECTS.get(name)
        if effect is None:  # PROTO, FRAME, STOP
            return
        before_mark, pops, pushes = effect
        if before_mark is not None:
            self.pop_mark()
            pops = before_mark
        for _ in range(pops):
            self.pop()
        self.stack.extend([_UNKNOWN] * pushes)

    def persistent_id(self, _arg: Any) -> None:
        declaration = _declaration(self.pop())
        if declaration is not None:
            self.found.setdefault(declaration.key, declaration)
        self.stack.append(_UNKNOWN)


def _global(machine: _Machine, arg: Any) -> None:
    module, _, qualname = str(arg).partition(" ")
    machine.stack.append(_Global(module, qualname))


def _stack_global(machine: _Machine, _arg: Any) -> None:
    qualname, module = machine.pop(), machine.pop()
    machine.stack.append(_Global(str(module), str(qualname)))


def _tuple_of(size: int) -> Callable[[_Machine, Any], None]:
    def build(machine: _Machine, _arg: Any) -> None:
        items = [machine.pop() for _ in range(size)]
        machine.stack.append(tuple(reversed(items)))

    return build


def _push(value: Any) -> Callable[[_Machine, Any], None]:
    return lambda machine, _arg: machine.stack.append(value)


def _put(machine: _Machine, arg: Any) -> None:
    machine.memo[arg] = machine.top()


def _get(machine: _Machine, arg: Any) -> None:
    machine.stack.append(machine.memo.get(arg, _UNKNOWN))


_HANDLERS: Final[dict[str, Callable[[_Machine, Any], None]]] = {
    **dict.fromkeys(_CONSTANTS, lambda machine, arg: machine.stack.append(arg)),
    "NEWTRUE": _push(True),  # noqa: FBT003 - the opcode's value
    "NEWFALSE": _push(False),  # noqa: FBT003 - the opcode's value
    "MARK": _push(_MARK),
    "GLOBAL": _global,
    "STACK_GLOBAL": _stack_global,
    "PUT": _put,
    "BINPUT": _put,
    "LONG_BINPUT": _put,
    "MEMOIZE": lambda machine, _arg: _put(machine, len(machine.memo)),
    "GET": _get,
    "BINGET": _get,
    "LONG_BINGET": _get,
    "TUPLE": lambda machine, _arg: machine.stack.append(tuple(machine.pop_mark())),
    "EMPTY_TUPLE": _push(()),
    "TUPLE1": _tuple_of(1),
    "TUPLE2": _tuple_of(2),
    "TUPLE3": _tuple_of(3),
    "DUP": lambda machine, _arg: machine.stack.append(machine.top()),
    "BINPERSID": _Machine.persistent_id,
}


def _effect(opcode: pickletools.OpcodeInfo) -> tuple[int | None, int, int]:
    """(items below the mark, or None without one; items popped; items pushed)."""
    before = opcode.stack_before
    below = (
        before.index(pickletools.markobject)
        if pickletools.markobject in before
        else None
    )
    return below, len(before), len(opcode.stack_after)


_EFFECTS: Final = {
    opcode.name: _effect(opcode)
    for opcode in pickletools.opcodes
    if opcode.name not in ("PROTO", "FRAME", "STOP")
}


def _scan_pickle(stream: IO[bytes], found: dict[str, StorageDeclaration]) -> None:
    """Read one pickle from ``stream`` (up to its STOP), collecting declarations."""
    machine = _Machine(found)
    run = machine.run
    for opcode, arg, _position in pickletools.genops(stream):
        run(opcode.name, arg)


def _scan_zip(reader: BoundedReader, found: dict[str, StorageDeclaration]) -> None:
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


def declared_storages(handle: IO[bytes], path: Path) -> list[StorageDeclaration]:
    """Each storage a torch pickle declares, once, in order; checked against its size.

    Reading moves ``handle``'s position.

    Raises:
        CheckpointCorruptError: The file cannot be parsed, or declares more bytes
            than it holds (what would make ``torch.load`` allocate them).
    """
    reader = BoundedReader(handle)
    declarations: dict[str, StorageDeclaration] = {}
    try:
        head = reader.take(len(ZIP_MAGIC))
        reader.rewind()
        if head == ZIP_MAGIC:
            _scan_zip(reader, declarations)
        else:
            # An old-format file: magic, protocol and system pickles, then the state's.
            for _ in range(4):
                _scan_pickle(reader, declarations)  # type: ignore[arg-type]
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError, IndexError) as error:
        reason = f"unreadable torch pickle: {str(error).splitlines()[0][:200]}"
        raise CheckpointCorruptError(path, reason) from error
    found = list(declarations.values())
    if any(item.numel < 0 for item in found):
        reason = "torch pickle declares a storage of negative size; the file is damaged"
        raise CheckpointCorruptError(path, reason)
    declared = sum(item.nbytes for item in found)
    if declared > reader.size:
        reason = (
            f"torch pickle declares storages of {declared} bytes in a file of "
            f"{reader.size}; the file is damaged or crafted, and is not loaded"
        )
        raise CheckpointCorruptError(path, reason)
    return found
