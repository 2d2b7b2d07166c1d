"""The JSON state tree of container format 1, and of sharded checkpoint indexes.

Format 1 kept the whole tree in the JSON header: ``null``, booleans and strings
stand for themselves, every other value is a one-key object naming its type
(docs/ckptkit/format.md, "Format 1"). Single files are no longer written in
format 1 (``decode_tree`` reads the old ones), but the index of a sharded
checkpoint (``ckptkit-sharded.json``, its own format) keeps this tree:
``ckptkit.distributed`` subclasses :class:`Encoder` to write it.
"""

from __future__ import annotations

import base64
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.tensor_leaves import path_text, unique_entry_name
from ckptkit.errors import SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

JsonNode = Any  # a JSON value as described in the module docstring
_LEAF_KINDS = ("tensor", "ndarray", "npscalar")


class Encoder:
    """Turns a state into a JSON tree; subclasses decide what a tensor leaf is.

    Exact types only (nothing changes type on the way back); anything else is a
    ``SerializationError`` naming its place in the state. ``ckptkit.distributed``
    subclasses it (``_tensor_leaf``) to key sharded tensors and migrated trees.
    """

    def __init__(self) -> None:
        self.leaves: list[dict[str, Any]] = []
        self._leaf_by_id: dict[int, int] = {}
        self._names: set[str] = set()
        self._keepalive: list[object] = []

    def encode(self, value: Any, path: tuple[object, ...]) -> JsonNode:  # noqa: PLR0911
        """The JSON node of ``value`` (at ``path`` in the state)."""
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            return {"int": str(value)}
        if kind is float:
            return {"float": float.hex(value)}  # exact, nan/inf/-0.0 included
        if kind is bytes:
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if kind is list or kind is tuple:
            items = [self.encode(v, (*path, i)) for i, v in enumerate(value)]
            return {kind.__name__: items}
        if kind is dict or kind is OrderedDict:
            pairs = [
                [self._encode_key(key, path), self.encode(item, (*path, key))]
                for key, item in value.items()
            ]
            return {"odict" if kind is OrderedDict else "dict": pairs}
        if kind is torch.Size:
            return {"size": list(value)}
        if kind is torch.dtype:
            return {"dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.Tensor):
            return {"tensor": self._tensor_leaf(value, path, "tensor", id(value))}
        return self._encode_numpy(value, path)

    def _encode_key(self, key: object, path: tuple[object, ...]) -> JsonNode:
        if key is None or type(key) in (bool, str, int, float):
            return self.encode(key, path)
        msg = (
            f"{path_text(path)} has a key of type {type(key).__name__} ({key!r}); "
            "keys of a sharded checkpoint must be str, int, float, bool or None"
        )
        raise SerializationError(msg)

    def _encode_numpy(self, value: Any, path: tuple[object, ...]) -> JsonNode:
        np = sys.modules.get("numpy")
        if np is not None and type(value) is np.ndarray:
            return {"ndarray": self._numpy_leaf(value, path)}
        if np is not None and isinstance(value, np.generic):
            return {"npscalar": self._numpy_leaf(np.asarray(value), path)}
        kind = type(value)
        msg = (
            f"{path_text(path)} is of type {kind.__module__}.{kind.__qualname__}, "
            "which a sharded checkpoint does not store (supported: dict, "
            "OrderedDict, list, tuple, None, bool, int, float, str, bytes, "
            "torch.Tensor, torch.dtype, torch.Size, numpy arrays and scalars); "
            "convert it, or keep it in a single file (ckptkit.save)"
        )
        raise SerializationError(msg)

    def _numpy_leaf(self, array: np.ndarray[Any, Any], path: tuple[object, ...]) -> int:
        if (
            array.dtype.hasobject
            or array.dtype.byteorder == ">"
            or array.dtype.kind in "USVOMm"
        ):
            msg = (
                f"{path_text(path)} is a numpy array of dtype {array.dtype}, "
                "which ckptkit does not store"
            )
            raise SerializationError(msg)
        contiguous = array if array.flags.c_contiguous else array.copy()
        self._keepalive.append(contiguous)
        tensor = torch.from_numpy(contiguous)
        return self._tensor_leaf(tensor, path, "ndarray", id(array))

    def _tensor_leaf(
        self, tensor: torch.Tensor, path: tuple[object, ...], kind: str, key_id: int
    ) -> int:
        """The leaf number of a tensor (``kind``: tensor, ndarray, npscalar).

        ``key_id`` is the id of the object the state holds (a numpy array's, for
        the tensor made from it): one object stored twice is one leaf.
        """
        raise NotImplementedError

    def _unique_name(self, path: tuple[object, ...]) -> str:
        """The dotted path of ``path``, made unique among this encoder's names."""
        return unique_entry_name(path, self._names)


def decode_tree(node: JsonNode, leaf: Callable[[str, int], object]) -> object:  # noqa: C901, PLR0911
    """Rebuild the state from its skeleton; ``leaf(kind, index)`` supplies tensors.

    Raises:
        ValueError: The skeleton is malformed.
    """
    if node is None or isinstance(node, (bool, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        msg = f"malformed state node {str(node)[:80]}"
        raise ValueError(msg)
    ((kind, body),) = node.items()
    if kind == "int":
        return int(body)
    if kind == "float":
        return float.fromhex(body)
    if kind == "bytes":
        return base64.b64decode(body, validate=True)
    if kind == "list":
        return [decode_tree(item, leaf) for item in body]
    if kind == "tuple":
        return tuple(decode_tree(item, leaf) for item in body)
    if kind in ("dict", "odict"):
        pairs = ((decode_tree(k, leaf), decode_tree(v, leaf)) for k, v in body)
        return OrderedDict(pairs) if kind == "odict" else dict(pairs)
    if kind == "size":
        return torch.Size(int(n) for n in body)
    if kind == "dtype":
        dtype = getattr(torch, body, None)
        if not isinstance(dtype, torch.dtype):
            msg = f"unknown dtype {body!r}"
            raise ValueError(msg)
        return dtype
    if kind in _LEAF_KINDS:
        return leaf(kind, int(body))
    msg = f"unknown state node type {kind!r}"
    raise ValueError(msg)


def leaf_nodes(tree: JsonNode) -> list[tuple[str, Any]]:
    """The ``(kind, body)`` of every leaf node of ``tree``, in the order they appear."""
    found: list[tuple[str, Any]] = []
    pending = [tree]
    while pending:  # iterative: a crafted tree may be deeper than the stack
        node = pending.pop()
        if isinstance(node, dict) and len(node) == 1:
            ((kind, body),) = node.items()
            if kind in _LEAF_KINDS:
                found.append((kind, body))
            elif kind in ("list", "tuple"):
                pending.extend(reversed(body))
            elif kind in ("dict", "odict"):
                pending.extend(pair[1] for pair in reversed(body))
    return found


def leaf_kinds(tree: JsonNode, leaves: list[Any]) -> list[Any]:
    """The leaf table with each leaf's kind as its tree node says.

    Format 1 recorded every numpy leaf as ``"ndarray"`` in the leaf table and
    told scalars apart only in the tree (``{"npscalar": i}``).
    """
    scalars = {int(body) for kind, body in leaf_nodes(tree) if kind == "npscalar"}
    return [
        {**leaf, "kind": "npscalar"} if index in scalars else leaf
        for index, leaf in enumerate(leaves)
    ]
