"""Reading the state tree of container format 1 (files written before format 2).

Format 1 kept the whole tree in the JSON header: ``null``, booleans and strings
stand for themselves, every other value is a one-key object naming its type
(docs/ckptkit/format.md, "Format 1"). ckptkit no longer writes it.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from collections.abc import Callable

JsonNode = Any  # a JSON value as described in the module docstring


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
    if kind in ("tensor", "ndarray", "npscalar"):
        return leaf(kind, int(body))
    msg = f"unknown state node type {kind!r}"
    raise ValueError(msg)


def leaf_kinds(tree: JsonNode, leaves: list[Any]) -> list[Any]:
    """The leaf table with each leaf's kind as its tree node says.

    Format 1 recorded every numpy leaf as ``"ndarray"`` in the leaf table and
    told scalars apart only in the tree (``{"npscalar": i}``).
    """
    scalars: set[int] = set()
    pending = [tree]
    while pending:  # iterative: a crafted tree may be deeper than the stack
        node = pending.pop()
        if isinstance(node, dict) and len(node) == 1:
            ((kind, body),) = node.items()
            if kind == "npscalar":
                scalars.add(int(body))
            elif kind in ("list", "tuple"):
                pending.extend(body)
            elif kind in ("dict", "odict"):
                pending.extend(pair[1] for pair in body)
    return [
        {**leaf, "kind": "npscalar"} if index in scalars else leaf
        for index, leaf in enumerate(leaves)
    ]
