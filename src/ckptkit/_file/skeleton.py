"""The skeleton of a state in container format 2: MessagePack with tagged nodes.

Plain data (dicts, lists, str, int, float, bool, None, bytes) is MessagePack's
own; every other value is a tagged node (``values``). Writing and reading run in
MessagePack's C code, calling into Python only for tagged nodes, so a big Python
state costs about what pickle costs (docs/ckptkit/format.md, section 3).

Reading has two modes. *Whole* (``leaf`` given) rebuilds the state at once.
*Structural* (``leaf=None``) rebuilds only the containers a key path can walk
(dict, OrderedDict, list, tuple, set, frozenset), with ``LeafRef`` for tensor
leaves and ``Opaque`` for other tagged values, so that validation and ``keys=``
never read a tensor or resolve a class they do not need; ``materialize`` finishes
a selected part.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack

from ckptkit._file import values
from ckptkit._file.values import Tag, UnresolvedValueError
from ckptkit.errors import SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

#: States nested deeper than this are refused by ``save`` (and files claiming
#: more by ``load``): MessagePack nests at most 511 arrays, and some values take
#: two levels.
MAX_STATE_DEPTH: Final = 200
# A tagged node may add a level of its own (an OrderedDict's map, a registered
# type's stored value), so files may nest up to twice as deep as states.
_MAX_NODE_DEPTH = 2 * MAX_STATE_DEPTH + 2
_UNICODE = "surrogatepass"  # str from os.fsdecode may hold lone surrogates


@dataclass(slots=True, eq=False)
class LeafRef:
    """A tensor leaf not read yet (structural reading)."""

    index: int


@dataclass(slots=True, eq=False)
class Opaque:
    """A tagged value not rebuilt yet (structural reading)."""

    tag: Tag
    body: list[Any]


@dataclass(slots=True, eq=False)
class _Mark:
    """The decoded ext value that starts a tagged node."""

    tag: Tag


_MARKS = {int(tag): _Mark(tag) for tag in Tag}


def pack_skeleton(state: object, replacements: dict[int, object]) -> bytes:
    """The skeleton of a state the codec has checked (``codec.encode_state``).

    ``replacements``: ``id(value) -> node`` for tensor leaves and registered types.
    """

    def default(value: object) -> object:
        node = replacements.get(id(value))
        if node is not None:
            return node
        if type(value) is int:
            return values.bigint_node(value)
        node = values.to_node(value)
        if node is None:  # pragma: no cover - the codec's walk refused it already
            msg = f"unexpected {type(value).__name__} in a checked state"
            raise SerializationError(msg)
        return node

    packer = msgpack.Packer(
        default=default,
        strict_types=True,  # subclasses and tuples reach default: types stay exact
        use_bin_type=True,
        datetime=False,
        unicode_errors=_UNICODE,
    )
    try:
        data: bytes = packer.pack(state)
    except ValueError as error:  # pragma: no cover - the walk bounds the depth
        raise SerializationError(f"state cannot be written: {error}") from error
    return data


def _leaf_index(body: list[Any], count: int) -> int:
    if len(body) != 1 or type(body[0]) is not int or body[0] < 0:
        msg = "a leaf node is malformed"
        raise ValueError(msg)
    return checked_leaf(body[0], count)


def checked_leaf(index: int, count: int) -> int:
    """``index``, once known to name one of the ``count`` leaves of the table.

    Raises:
        ValueError: It does not (never counted from the end: -1 is no leaf).
    """
    if not 0 <= index < count:
        msg = f"the state refers to leaf {index}, which is not stored"
        raise ValueError(msg)
    return index


def unpack_skeleton(
    data: bytes | memoryview,
    leaf: Callable[[int], object] | None,
    leaf_count: int,
) -> object:
    """Rebuild a state from its skeleton.

    ``leaf`` gives the value of each leaf table index (whole reading), or is None
    (structural reading); a leaf node beyond ``leaf_count`` is malformed.

    Raises:
        ValueError: The skeleton is malformed (MessagePack's errors included).
        UnresolvedValueError: An intact value this process cannot rebuild (an
            unknown tag, a class not imported, a type nobody registered).
    """
    counts = [0, 0]  # tag marks read, tag marks that started a node

    def ext_hook(code: int, payload: bytes) -> _Mark:
        mark = _MARKS.get(code)
        if mark is None:
            msg = (
                f"the state holds a kind of value this ckptkit does not know (tag "
                f"{code}); it was written by a newer ckptkit: upgrade ckptkit"
            )
            raise UnresolvedValueError(msg)
        if payload:
            msg = f"tag {code} carries data"
            raise ValueError(msg)
        counts[0] += 1
        return mark

    def list_hook(items: list[Any]) -> object:
        if not items or type(items[0]) is not _Mark:
            return items
        counts[1] += 1
        tag, body = items[0].tag, items[1:]
        if tag is Tag.LEAF:
            index = _leaf_index(body, leaf_count)
            return LeafRef(index) if leaf is None else leaf(index)
        if leaf is None and tag not in values.CONTAINER_TAGS:
            return Opaque(tag, body)
        return values.REBUILD[tag](body)

    state = msgpack.unpackb(
        data,
        ext_hook=ext_hook,
        list_hook=list_hook,
        strict_map_key=False,
        raw=False,
        unicode_errors=_UNICODE,
        timestamp=0,
    )
    if counts[0] != counts[1]:
        msg = "a tag mark stands outside the start of a tagged node"
        raise ValueError(msg)
    return state


def leaf_indices(node: object, out: set[int]) -> None:
    """Add the indices of the leaves under a structurally read part to ``out``."""
    if type(node) is LeafRef:
        out.add(node.index)
    elif type(node) is Opaque:
        leaf_indices(node.body, out)
    elif isinstance(node, dict):
        for key, value in node.items():
            leaf_indices(key, out)
            leaf_indices(value, out)
    elif isinstance(node, (list, tuple, set, frozenset)):
        for item in node:
            leaf_indices(item, out)


def materialize(node: object, leaf: Callable[[int], object], depth: int = 0) -> object:
    """Finish a structurally read part: read its leaves, rebuild tagged values.

    Raises:
        ValueError: The part is nested deeper than any file ckptkit writes.
        UnresolvedValueError: A value this process cannot rebuild.
    """
    if depth > _MAX_NODE_DEPTH:
        msg = f"the state is nested more than {_MAX_NODE_DEPTH} levels deep"
        raise ValueError(msg)
    kind = type(node)
    depth += 1
    if kind is LeafRef:
        return leaf(node.index)  # type: ignore[attr-defined]
    if kind is Opaque:
        body = [materialize(item, leaf, depth) for item in node.body]  # type: ignore[attr-defined]
        return values.REBUILD[node.tag](body)  # type: ignore[attr-defined]
    if kind is dict or kind is OrderedDict:
        return kind(
            (materialize(k, leaf, depth), materialize(v, leaf, depth))
            for k, v in node.items()  # type: ignore[attr-defined]
        )
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return kind(materialize(item, leaf, depth) for item in node)  # type: ignore[attr-defined]
    return node
