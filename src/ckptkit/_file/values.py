"""The typed values of a skeleton (format 2): how each is written and rebuilt.

A value MessagePack has no exact type for is written as a *tagged node*: an array
whose first element is an empty ext value with the tag's code, followed by the
node's body (docs/ckptkit/format.md, section 3). ``to_node`` builds the node of a
value, ``rebuild`` the value of a node; both sides live here so they cannot
drift apart. Classes named in a file (enums, namedtuples) are looked up among the
modules already imported, never imported: loading runs no code a file names.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
import zoneinfo
from collections import OrderedDict
from dataclasses import is_dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

import torch
from msgpack import ExtType

from ckptkit.leaf_types import leaf_type_named

if TYPE_CHECKING:
    from collections.abc import Callable


class Tag(IntEnum):
    """Ext type codes of the tagged nodes (the file format: never renumber)."""

    TUPLE = 1
    ODICT = 2
    BIGINT = 3
    LEAF = 4
    DTYPE = 5
    SIZE = 6
    DEVICE = 7
    SET = 8
    FROZENSET = 9
    COMPLEX = 10
    PATH = 11
    DATETIME = 12
    DATE = 13
    TIME = 14
    TIMEDELTA = 15
    TIMEZONE = 16
    ZONEINFO = 17
    ENUM = 18
    NAMEDTUPLE = 19
    USER = 20


#: The ext value that starts each tagged node.
MARKS: dict[Tag, ExtType] = {tag: ExtType(int(tag), b"") for tag in Tag}

_PATH_TYPES: dict[str, type[pathlib.PurePath]] = {
    cls.__name__: cls
    for cls in (
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    )
}


class UnresolvedValueError(Exception):
    """An intact node this process cannot rebuild (reported *incompatible*)."""


def find_class(module: object, qualname: object) -> type | None:
    """The class ``module:qualname`` if its module is already imported, else None.

    Nothing is imported: a file may name any class, and importing runs code.
    """
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    found: object = sys.modules.get(module)
    for part in qualname.split("."):
        if found is None or not part.isidentifier():
            return None
        try:
            found = getattr(found, part, None)
        except Exception:  # noqa: BLE001 - a module __getattr__ may raise anything
            return None
    return found if isinstance(found, type) else None


def class_reference(cls: type) -> list[str] | None:
    """``[module, qualname]`` if ``load`` can find ``cls`` by those names."""
    module, qualname = cls.__module__, cls.__qualname__
    return [module, qualname] if find_class(module, qualname) is cls else None


def _timezone_node(value: dt.tzinfo | None) -> object:
    if value is None:
        return None
    if type(value) is dt.timezone:
        offset, *name = value.__getinitargs__()  # type: ignore[attr-defined]
        parts = [offset.days, offset.seconds, offset.microseconds]
        return [MARKS[Tag.TIMEZONE], *parts, name[0] if name else None]
    if type(value) is zoneinfo.ZoneInfo and value.key is not None:
        return [MARKS[Tag.ZONEINFO], value.key]
    msg = (
        f"a datetime with a {type(value).__name__} time zone; convert it with "
        ".astimezone(datetime.timezone.utc) or use zoneinfo.ZoneInfo"
    )
    raise TypeError(msg)


def _datetime_node(value: dt.datetime) -> list[object]:
    fields = [value.year, value.month, value.day, value.hour, value.minute]
    fields += [value.second, value.microsecond, value.fold]
    return [MARKS[Tag.DATETIME], *fields, _timezone_node(value.tzinfo)]


def _time_node(value: dt.time) -> list[object]:
    fields = [value.hour, value.minute, value.second, value.microsecond, value.fold]
    return [MARKS[Tag.TIME], *fields, _timezone_node(value.tzinfo)]


def _enum_node(value: Enum) -> list[object]:
    reference = class_reference(type(value))
    if reference is None or type(value).__members__.get(value.name) is not value:
        msg = (
            f"the enum member {value!r} cannot be found by name on load (a class "
            "defined inside a function, or a combined flag); store its .value"
        )
        raise TypeError(msg)
    return [MARKS[Tag.ENUM], *reference, value.name]


def _namedtuple_node(value: tuple[Any, ...]) -> list[object]:
    reference = class_reference(type(value))
    if reference is None:
        msg = (
            f"the namedtuple class {type(value).__qualname__} cannot be found by "
            "name on load (defined inside a function?); store value._asdict() or "
            "define the class at module level"
        )
        raise TypeError(msg)
    return [MARKS[Tag.NAMEDTUPLE], *reference, *value]


def _path_node(value: pathlib.PurePath) -> list[object]:
    return [MARKS[Tag.PATH], type(value).__name__, str(value)]


def bigint_node(value: int) -> list[object]:
    """An int beyond 64 bits: little-endian two's complement bytes."""
    size = (value.bit_length() + 8) // 8
    return [MARKS[Tag.BIGINT], value.to_bytes(size, "little", signed=True)]


_SIMPLE: dict[type, Callable[[Any], object]] = {
    tuple: lambda v: [MARKS[Tag.TUPLE], *v],
    OrderedDict: lambda v: [MARKS[Tag.ODICT], dict(v)],
    set: lambda v: [MARKS[Tag.SET], *v],
    frozenset: lambda v: [MARKS[Tag.FROZENSET], *v],
    complex: lambda v: [MARKS[Tag.COMPLEX], v.real, v.imag],
    torch.dtype: lambda v: [MARKS[Tag.DTYPE], str(v).removeprefix("torch.")],
    torch.Size: lambda v: [MARKS[Tag.SIZE], *v],
    torch.device: lambda v: [MARKS[Tag.DEVICE], str(v)],
    dt.datetime: _datetime_node,
    dt.date: lambda v: [MARKS[Tag.DATE], v.year, v.month, v.day],
    dt.time: _time_node,
    dt.timedelta: lambda v: [MARKS[Tag.TIMEDELTA], v.days, v.seconds, v.microseconds],
    dt.timezone: _timezone_node,
    zoneinfo.ZoneInfo: _timezone_node,
    **dict.fromkeys(_PATH_TYPES.values(), _path_node),
}


def to_node(value: object) -> object:
    """The tagged node of a value that is not a container, leaf or plain type.

    Returns None for a type ckptkit does not store (see :func:`refusal_hint`).

    Raises:
        TypeError: A supported type whose value cannot be kept (the message says
            why and what to store instead).
    """
    kind = type(value)
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple(value)
    if isinstance(value, Enum):
        return _enum_node(value)
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return _namedtuple_node(value)
    return None


def refusal_hint(value: object) -> str:
    """What to store instead of a value of an unsupported type."""
    for check, hint in _HINTS:
        if check(value):
            return hint
    return (
        "convert it to supported values (docs/ckptkit/format.md, 'Supported "
        "values'), or register a converter with ckptkit.register_leaf_type"
    )


_HINTS: list[tuple[Callable[[object], bool], str]] = [
    (
        lambda v: callable(getattr(v, "state_dict", None)),
        "store value.state_dict() and restore it with .load_state_dict()",
    ),
    (
        lambda v: is_dataclass(v) and not isinstance(v, type),
        (
            "store dataclasses.asdict(value) and rebuild the object after "
            "loading, or register it with ckptkit.register_leaf_type"
        ),
    ),
    (lambda v: isinstance(v, (bytearray, memoryview)), "store bytes(value)"),
    (lambda v: isinstance(v, dict), "store dict(value) (or an OrderedDict)"),
    (lambda v: isinstance(v, list), "store list(value)"),
    (lambda v: isinstance(v, tuple), "store tuple(value)"),
    (lambda v: isinstance(v, str), "store str(value)"),
    (lambda v: isinstance(v, (int, float)), "store int(value) or float(value)"),
    (callable, "ckptkit stores data, not code: store what it computes"),
]


# ---- reading ---------------------------------------------------------------


def _need(body: list[Any], count: int) -> list[Any]:
    if len(body) != count:
        msg = f"a tagged value has {len(body)} fields, expected {count}"
        raise ValueError(msg)
    return body


def _timezone(body: list[Any]) -> dt.timezone:
    days, seconds, micros, name = _need(body, 4)
    offset = dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    return dt.timezone(offset) if name is None else dt.timezone(offset, name)


def _zone(body: list[Any]) -> zoneinfo.ZoneInfo:
    (key,) = _need(body, 1)
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        msg = f"time zone {key!r} is not in this system's time zone database"
        raise UnresolvedValueError(msg) from error


def _tz(node: object) -> dt.tzinfo | None:
    if node is None or isinstance(node, dt.tzinfo):
        return node
    msg = "a datetime's time zone is malformed"
    raise TypeError(msg)


def _datetime(body: list[Any]) -> dt.datetime:
    year, month, day, hour, minute, second, micros, fold, tz = _need(body, 9)
    return dt.datetime(
        year, month, day, hour, minute, second, micros, tzinfo=_tz(tz), fold=fold
    )


def _time(body: list[Any]) -> dt.time:
    hour, minute, second, micros, fold, tz = _need(body, 6)
    return dt.time(hour, minute, second, micros, tzinfo=_tz(tz), fold=fold)


def _path(body: list[Any]) -> pathlib.PurePath:
    name, text = _need(body, 2)
    cls = _PATH_TYPES[name]
    try:
        return cls(text)
    except NotImplementedError as error:  # a WindowsPath on POSIX, or the reverse
        msg = f"a {name} cannot be made on this system; it holds {text!r}"
        raise UnresolvedValueError(msg) from error


def _named_class(module: object, qualname: object, what: str) -> type:
    cls = find_class(module, qualname)
    if cls is None:
        msg = (
            f"the state holds {what} {module}.{qualname}: import {module} before "
            "loading (ckptkit never imports modules a file names)"
        )
        raise UnresolvedValueError(msg)
    return cls


def _enum(body: list[Any]) -> Enum:
    module, qualname, name = _need(body, 3)
    cls = _named_class(module, qualname, "a member of the enum")
    if not issubclass(cls, Enum) or name not in cls.__members__:
        msg = f"{module}.{qualname} has no enum member {name!r}"
        raise UnresolvedValueError(msg)
    return cls.__members__[name]


def _namedtuple(body: list[Any]) -> tuple[Any, ...]:
    if len(body) < 2:  # noqa: PLR2004 - module and qualname
        msg = "a namedtuple node lacks its class"
        raise ValueError(msg)
    cls = _named_class(body[0], body[1], "a namedtuple of class")
    fields = getattr(cls, "_fields", None)
    if not issubclass(cls, tuple) or fields is None or len(fields) != len(body) - 2:
        msg = f"{body[0]}.{body[1]} is not a namedtuple of {len(body) - 2} fields"
        raise UnresolvedValueError(msg)
    return cls._make(body[2:])  # type: ignore[attr-defined,no-any-return]


def _user(body: list[Any]) -> object:
    name, stored = _need(body, 2)
    entry = leaf_type_named(name)
    if entry is None:
        msg = (
            f"the state holds a value of the registered type {name!r}: register "
            "its converter with ckptkit.register_leaf_type before loading"
        )
        raise UnresolvedValueError(msg)
    try:
        return entry.decode(stored)
    except Exception as error:
        msg = f"the converter registered for {name!r} failed to decode it: {error}"
        raise UnresolvedValueError(msg) from error


def _dtype(body: list[Any]) -> torch.dtype:
    (name,) = _need(body, 1)
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if isinstance(dtype, torch.dtype):
        return dtype
    msg = f"unknown dtype {name!r}"
    raise ValueError(msg)


def _complex(body: list[Any]) -> complex:
    real, imag = _need(body, 2)
    if type(real) is not float or type(imag) is not float:
        msg = "a complex number's parts are not floats"
        raise ValueError(msg)
    return complex(real, imag)


#: Rebuilders of every tag but LEAF (which needs the leaf table).
REBUILD: dict[int, Callable[[list[Any]], object]] = {
    Tag.TUPLE: tuple,
    Tag.ODICT: lambda body: OrderedDict(*_need(body, 1)),
    Tag.BIGINT: lambda body: int.from_bytes(_need(body, 1)[0], "little", signed=True),
    Tag.DTYPE: _dtype,
    Tag.SIZE: torch.Size,
    Tag.DEVICE: lambda body: torch.device(*_need(body, 1)),
    Tag.SET: set,
    Tag.FROZENSET: frozenset,
    Tag.COMPLEX: _complex,
    Tag.PATH: _path,
    Tag.DATETIME: _datetime,
    Tag.DATE: lambda body: dt.date(*_need(body, 3)),
    Tag.TIME: _time,
    Tag.TIMEDELTA: lambda body: dt.timedelta(*_need(body, 3)),
    Tag.TIMEZONE: _timezone,
    Tag.ZONEINFO: _zone,
    Tag.ENUM: _enum,
    Tag.NAMEDTUPLE: _namedtuple,
    Tag.USER: _user,
}

#: Tags that are containers a key path can walk into (the rest are values).
CONTAINER_TAGS = frozenset({Tag.TUPLE, Tag.ODICT, Tag.SET, Tag.FROZENSET})
