"""How ``ckd.load`` fills a caller's state from a stored tree, in place.

The caller's state decides what is loaded, as with DCP: every tensor in it is
filled in place from the stored tensor at the same path (DTensors get their
local part, plain tensors all of it); every other value is replaced by the
stored value at its path; dicts are filled key by key (stored keys the state
does not ask for are left out), lists and tuples item by item. A path the
checkpoint lacks, a shape or dtype that differs, or a container that is
another kind of thing is refused before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.tensor import DTensor

from ckptkit._file.leaf_views import leaf_value
from ckptkit._file.tensor_leaves import path_text
from ckptkit._file.tree_v1 import decode_tree, leaf_nodes
from ckptkit.distributed._chunks import empty_tensor
from ckptkit.distributed._index import LEAF_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from ckptkit.distributed._index import TensorRecord

_Path = tuple[object, ...]


@dataclass
class FillPlan:
    """Tensors for DCP to fill, and the value assignments to make afterwards.

    Attributes:
        targets: Stored key -> the tensor DCP reads it into (the caller's own
            tensors, or fresh ones for values the caller's state replaces).
        made: Tensors a migration created -> the caller's tensors they go to.
    """

    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    made: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    assignments: list[tuple[Any, Any, Callable[[], object]]] = field(
        default_factory=list
    )

    def apply(self) -> None:
        """Set the values, once DCP has filled every tensor."""
        # Tensors a migration made, whole, go into the caller's (maybe sharded) ones.
        for target, value in self.made:
            if isinstance(target, DTensor):
                from torch.distributed.tensor._utils import (
                    compute_local_shape_and_global_offset,
                )

                shape, offset = compute_local_shape_and_global_offset(
                    value.shape, target.device_mesh, target.placements
                )
                box = tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))
                target.to_local().copy_(value[box])
            else:
                target.copy_(value)
        for container, key, thunk in self.assignments:
            container[key] = thunk()


def _kind_and_body(node: Any) -> tuple[str, Any]:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        return str(kind), body
    return type(node).__name__, node


def _key_id(key: object) -> tuple[str, object]:
    # Exact matching: 1, 1.0 and True are different keys in a checkpoint.
    return type(key).__name__, key


class _Planner:
    def __init__(
        self,
        leaves: tuple[dict[str, Any], ...],
        tensors: dict[str, TensorRecord],
        made: dict[str, torch.Tensor],
    ) -> None:
        self.leaves, self.tensors, self.made_values = leaves, tensors, made
        self.plan = FillPlan()

    def walk(self, target: Any, node: Any, path: _Path) -> Callable[[], object] | None:
        """Plan the filling of ``target``; return a thunk if it must be replaced."""
        if isinstance(target, torch.Tensor):
            self._bind(target, node, path)
            return None
        if isinstance(target, dict):
            self._walk_dict(target, node, path)
            return None
        if isinstance(target, list):
            for position, thunk in enumerate(self._walk_items(target, node, path)):
                if thunk is not None:
                    self.plan.assignments.append((target, position, thunk))
            return None
        if type(target) is tuple:
            thunks = self._walk_items(target, node, path)
            if all(thunk is None for thunk in thunks):
                return None
            return lambda: tuple(
                t() if t is not None else v for t, v in zip(thunks, target, strict=True)
            )
        return self._decoder(node)

    def _walk_dict(self, target: dict[Any, Any], node: Any, path: _Path) -> None:
        kind, body = _kind_and_body(node)
        if kind not in ("dict", "odict"):
            raise TypeError(
                f"{path_text(path)} is a dict but the checkpoint holds a {kind}"
            )
        stored = {_key_id(decode_tree(k, _no_leaf)): v for k, v in body}
        for key, value in list(target.items()):
            child = stored.get(_key_id(key))
            if child is None and _key_id(key) not in stored:
                raise KeyError(f"{path_text((*path, key))}: not in the checkpoint")
            thunk = self.walk(value, child, (*path, key))
            if thunk is not None:
                self.plan.assignments.append((target, key, thunk))

    def _walk_items(
        self, target: Any, node: Any, path: _Path
    ) -> list[Callable[[], object] | None]:
        kind, body = _kind_and_body(node)
        if kind not in ("list", "tuple") or len(body) != len(target):
            size = len(body) if kind in ("list", "tuple") else 1
            raise ValueError(
                f"{path_text(path)} has {len(target)} items but the checkpoint "
                f"holds a {kind} of {size}"
            )
        return [
            self.walk(v, n, (*path, i))
            for i, (v, n) in enumerate(zip(target, body, strict=True))
        ]

    def _leaf_key(self, node: Any, path: _Path) -> str:
        kind, body = _kind_and_body(node)
        if kind not in LEAF_KINDS:
            raise TypeError(
                f"{path_text(path)} is a tensor but the checkpoint holds a {kind}"
            )
        return str(self.leaves[int(body)]["key"])

    def _bind(self, target: torch.Tensor, node: Any, path: _Path) -> None:
        key = self._leaf_key(node, path)
        if key in self.made_values:
            self.plan.made.append((target, self.made_values[key]))
            return
        record = self.tensors[key]
        dtype = str(target.dtype).removeprefix("torch.")
        if tuple(target.shape) != record.shape or dtype != record.dtype:
            raise ValueError(
                f"{path_text(path)} is {dtype} {list(target.shape)} but the "
                f"checkpoint holds {record.dtype} {list(record.shape)}"
            )
        bound = self.plan.targets.setdefault(key, target)
        if bound is not target:
            raise ValueError(
                f"{path_text(path)} is one tensor in the checkpoint with another "
                "part of the state (tied); pass the same tensor object for both"
            )

    def _fresh(self, key: str) -> torch.Tensor:
        if key in self.made_values:
            return self.made_values[key]
        if key not in self.plan.targets:
            self.plan.targets[key] = empty_tensor(self.tensors[key])
        return self.plan.targets[key]

    def _decoder(self, node: Any) -> Callable[[], object]:
        """A value the caller's state replaces: the stored subtree, read fresh."""
        numbers = [int(body) for _, body in leaf_nodes(node)]
        fresh = {number: self._fresh(self.leaves[number]["key"]) for number in numbers}

        def leaf(kind: str, number: int) -> object:
            return leaf_value(kind, fresh[number])

        return lambda: decode_tree(node, leaf)


def _no_leaf(kind: str, number: int) -> object:
    msg = f"a dict key cannot be a {kind} ({number})"
    raise ValueError(msg)


def plan_fill(
    state: Any,
    tree: Any,
    leaves: tuple[dict[str, Any], ...],
    tensors: dict[str, TensorRecord],
    made: dict[str, torch.Tensor] | None = None,
) -> FillPlan:
    """Plan how ``state`` is filled from a stored ``tree`` (see the module docstring).

    Raises:
        KeyError: ``state`` asks for a path the checkpoint does not hold.
        ValueError: A tensor of another shape or dtype; a list of another length.
        TypeError: A container that the checkpoint holds as something else.
    """
    planner = _Planner(leaves, tensors, made or {})
    if planner.walk(state, tree, ()) is not None:
        msg = "the state to load into must be a dict, a list or a tensor"
        raise TypeError(msg)
    return planner.plan
