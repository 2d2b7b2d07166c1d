"""A state split for DCP: ckptkit's JSON tree for everything, DCP for the tensors.

On save, a state is encoded as the JSON tree of format 1 (``_file.tree_v1``:
exact ints and floats, tuples, OrderedDicts, int keys, bytes, dtypes ...),
except that each tensor leaf (a DTensor, a plain tensor, a numpy array) becomes
a *key*, its dotted path in the state: DCP plans, shards and stores those
tensors; the tree itself goes into the index. No value ever takes DCP's pickled
byte path. Every rank encodes its own state; the coordinator merges the trees
(ranks may add their own keys; a key two ranks fill differently is an error,
since DCP keeps one copy of anything that is not a DTensor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.tensor import DTensor

from ckptkit._file.tensor_leaves import path_text
from ckptkit._file.tree_v1 import Encoder, JsonNode
from ckptkit.distributed._index import ITEMSIZES, LEAF_KINDS
from ckptkit.errors import SerializationError

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class SavedTree:
    """One rank's (or the merged) state tree: JSON skeleton and leaf table.

    Attributes:
        tree: The skeleton; tensor leaves are ``{"tensor": i}`` (or ``ndarray``,
            ``npscalar``) nodes pointing into ``leaves``.
        leaves: ``{"kind": ..., "key": ...}`` per leaf; ``key`` names the tensor
            in DCP's flat state dict and in the index.
        digests: xxh3 of every plain (non-DTensor) tensor, by key: the coordinator
            compares them across ranks.
    """

    tree: JsonNode
    leaves: list[dict[str, Any]]
    digests: dict[str, str] = field(default_factory=dict)


class _SplitEncoder(Encoder):
    """ckptkit's encoder with tensor leaves replaced by keys (no entries)."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors: dict[str, torch.Tensor] = {}

    def _tensor_leaf(
        self, tensor: torch.Tensor, path: tuple[object, ...], kind: str, key_id: int
    ) -> int:
        if key_id in self._leaf_by_id:  # the same object again (tied weights)
            return self._leaf_by_id[key_id]
        _check_tensor(tensor, path)
        index = len(self.leaves)
        self._leaf_by_id[key_id] = index
        key = self._unique_name(path)
        self.leaves.append({"kind": kind, "key": key})
        self.tensors[key] = tensor
        self._keepalive.append(tensor)
        return index


def _check_tensor(tensor: torch.Tensor, path: tuple[object, ...]) -> None:
    local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
    if local.layout is not torch.strided or local.is_quantized:
        msg = (
            f"{path_text(path)} is a {local.layout} / quantized tensor; "
            "only dense tensors are stored"
        )
        raise SerializationError(msg)
    if local.device.type == "meta":
        msg = f"{path_text(path)} is a meta tensor (no data); materialise it first"
        raise SerializationError(msg)
    if str(tensor.dtype).removeprefix("torch.") not in ITEMSIZES:
        msg = (
            f"{path_text(path)} has dtype {tensor.dtype}, which ckptkit does not store"
        )
        raise SerializationError(msg)


def split_state(state: object) -> tuple[SavedTree, dict[str, torch.Tensor]]:
    """Encode ``state``'s tree; return it and the tensors by key.

    Raises:
        SerializationError: A leaf or key ckptkit does not store (names its path).
    """
    encoder = _SplitEncoder()
    tree = encoder.encode(state, ())
    return SavedTree(tree, encoder.leaves), encoder.tensors


def _canonical(node: JsonNode) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _keyed(node: JsonNode, leaves: Sequence[dict[str, Any]]) -> JsonNode:
    """Replace leaf indices by ``{"@leaf": [kind, key]}`` (rank-independent)."""
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((kind, body),) = node.items()
    if kind in LEAF_KINDS:
        return {"@leaf": [kind, leaves[int(body)]["key"]]}
    if kind in ("list", "tuple"):
        return {kind: [_keyed(item, leaves) for item in body]}
    if kind in ("dict", "odict"):
        return {kind: [[key, _keyed(value, leaves)] for key, value in body]}
    return node


def _numbered(
    node: JsonNode, leaves: list[dict[str, Any]], seen: dict[str, int]
) -> JsonNode:
    """The inverse of :func:`_keyed`, numbering leaves in first-use order."""
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((kind, body),) = node.items()
    if kind == "@leaf":
        leaf_kind, key = body
        if key not in seen:
            seen[key] = len(leaves)
            leaves.append({"kind": leaf_kind, "key": key})
        return {leaf_kind: seen[key]}
    if kind in ("list", "tuple"):
        return {kind: [_numbered(item, leaves, seen) for item in body]}
    if kind in ("dict", "odict"):
        return {kind: [[key, _numbered(value, leaves, seen)] for key, value in body]}
    return node


def _key_text(node: JsonNode) -> str:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        return str(float.fromhex(body)) if kind == "float" else str(body)
    return repr(node)


def _merge(
    first: JsonNode, other: JsonNode, path: str, ranks: tuple[int, int]
) -> JsonNode:
    if _canonical(first) == _canonical(other):
        return first
    both = isinstance(first, dict) and isinstance(other, dict)
    if both and first.keys() == other.keys() and next(iter(first)) in ("dict", "odict"):
        kind = next(iter(first))
        merged = {_canonical(k): [k, v] for k, v in first[kind]}
        for key, value in other[kind]:
            name = _canonical(key)
            if name in merged:
                where = f"{path}[{_key_text(key)}]"
                merged[name][1] = _merge(merged[name][1], value, where, ranks)
            else:
                merged[name] = [key, value]
        return {kind: list(merged.values())}
    msg = (
        f"{path} differs between rank {ranks[0]} and rank {ranks[1]}: ckd.save keeps "
        "one value per key (DCP stores anything that is not a DTensor once); keep "
        "per-rank values under per-rank keys, e.g. state['rng'][f'rank{rank}']"
    )
    raise SerializationError(msg)


def merge_trees(trees: Sequence[SavedTree]) -> SavedTree:
    """Merge the ranks' trees into one (rank order decides the order of keys).

    Raises:
        SerializationError: Two ranks hold different values, or plain tensors with
            different bytes, under one key.
    """
    digests: dict[str, tuple[int, str]] = {}
    for rank, tree in enumerate(trees):
        for key, value in tree.digests.items():
            seen = digests.setdefault(key, (rank, value))
            if seen[1] != value:
                msg = (
                    f"tensor {key!r} differs between rank {seen[0]} and rank {rank}: "
                    "DCP stores a plain (non-DTensor) tensor once; make it a DTensor, "
                    "or keep per-rank tensors under per-rank keys"
                )
                raise SerializationError(msg)
    texts = {_canonical([t.tree, t.leaves]) for t in trees}
    if len(texts) == 1:
        return SavedTree(trees[0].tree, trees[0].leaves)
    merged = _keyed(trees[0].tree, trees[0].leaves)
    for rank, tree in enumerate(trees[1:], start=1):
        merged = _merge(merged, _keyed(tree.tree, tree.leaves), "state", (0, rank))
    leaves: list[dict[str, Any]] = []
    return SavedTree(_numbered(merged, leaves, {}), leaves)


class _Stored:
    """Where a plain DCP planner's flattened value goes in the rebuilt tree."""

    __slots__ = ("is_tensor", "key", "node")

    def __init__(self, key: str, node: JsonNode, *, is_tensor: bool) -> None:
        self.key, self.node, self.is_tensor = key, node, is_tensor


class _SynthesisEncoder(Encoder):
    """Encodes a nesting of :class:`_Stored` markers (tensor keys or value nodes)."""

    def encode(self, value: Any, path: tuple[object, ...]) -> JsonNode:
        if type(value) is not _Stored:
            return super().encode(value, path)
        if not value.is_tensor:
            return value.node
        index = len(self.leaves)
        self.leaves.append({"kind": "tensor", "key": value.key})
        return {"tensor": index}


def synthesize_tree(
    mappings: dict[str, tuple[str | int, ...]],
    tensor_keys: set[str],
    values: dict[str, JsonNode],
) -> SavedTree:
    """The tree of a state a plain DCP planner flattened (``fqn -> path``).

    DCP's own nesting rules apply (``set_element``: str parts make dicts, int
    parts lists); keys without a mapping stay at the top level.
    """
    from torch.distributed.checkpoint._traverse import set_element

    known = tensor_keys | set(values)
    order = [key for key in mappings if key in known]
    order += sorted(known - set(order))
    state: dict[str, Any] = {}
    for key in order:
        marker = _Stored(key, values.get(key), is_tensor=key in tensor_keys)
        set_element(state, mappings.get(key, (key,)), marker)
    encoder = _SynthesisEncoder()
    tree = encoder.encode(state, ())
    return SavedTree(tree, encoder.leaves)
