"""Nested state -> skeleton, leaf table and container entries. No pickle.

``encode_state`` walks the state once, in Python, only to check every value and
to collect its tensor leaves (with their paths, for entry names and messages);
MessagePack then writes the skeleton in C (``skeleton.pack_skeleton``), calling
back only for values that are not plain data. That split is what makes a large
Python state (a metrics history of 100,000 dicts) about as fast to save as
``torch.save`` (``python bench/bench_python_state.py``).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from msgpack import ExtType, Timestamp

from ckptkit._file import values
from ckptkit._file.skeleton import MAX_STATE_DEPTH, pack_skeleton
from ckptkit._file.tensor_leaves import Entry, TensorLeaves, path_text
from ckptkit.errors import SerializationError
from ckptkit.leaf_types import LeafType, leaf_type_for

__all__ = ["MAX_STATE_DEPTH", "Encoded", "Entry", "encode_state"]

_SCALARS = frozenset({str, float, bool, bytes, type(None)})
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what MessagePack stores as an int
_ITEMS = frozenset({tuple, set, frozenset})
_MSGPACK_OWN = (ExtType, Timestamp)

# A path is built as nested pairs (parent, part) while walking, and flattened
# only for a tensor's entry name or a message: most values never need theirs.
_Path = tuple[Any, Any] | None


def _flat(path: _Path) -> tuple[object, ...]:
    parts: list[object] = []
    while path is not None:
        path, part = path
        parts.append(part)
    return tuple(reversed(parts))


@dataclass
class Encoded:
    """A state split into its skeleton, leaf table and the tensors to store.

    ``tree`` is MessagePack (docs/ckptkit/format.md, section 3); the writer adds
    the skeleton's own entry to ``entries``.
    """

    tree: bytes
    leaves: list[dict[str, Any]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


class _Walker:
    """Checks every value of a state and collects what MessagePack cannot write."""

    def __init__(self) -> None:
        self.tensors = TensorLeaves()
        # id(value) -> the node written for it (tensor leaves, registered types)
        self.replacements: dict[int, object] = {}

    def refuse(self, path: _Path, reason: str) -> SerializationError:
        return SerializationError(f"{path_text(_flat(path))} {reason}")

    def visit(self, value: Any, path: _Path, depth: int) -> None:
        kind = type(value)
        if kind in _SCALARS or (kind is int and _INT_MIN <= value <= _INT_MAX):
            return
        if depth >= MAX_STATE_DEPTH:
            msg = (
                f"is nested more than {MAX_STATE_DEPTH} levels deep (or contains "
                "itself); flatten it"
            )
            raise self.refuse(path, msg)
        if kind is dict or kind is OrderedDict:
            self._visit_pairs(value, path, depth)
        elif kind is list or kind in _ITEMS:
            self._visit_items(value, path, depth)
        else:
            self._visit_other(value, path, depth)

    def _visit_pairs(self, value: dict[Any, Any], path: _Path, depth: int) -> None:
        depth += 1
        for key, item in value.items():
            if type(key) is not str:
                self.visit(key, path, depth)
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            self.visit(item, (path, key), depth)

    def _visit_items(self, value: Any, path: _Path, depth: int) -> None:
        depth += 1
        for index, item in enumerate(value):
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            self.visit(item, (path, index), depth)

    def _visit_other(self, value: Any, path: _Path, depth: int) -> None:
        if type(value) is int:
            return  # beyond 64 bits: MessagePack hands it to values.bigint_node
        if id(value) in self.replacements:
            return  # the same leaf or registered value again
        if isinstance(value, _MSGPACK_OWN):
            # MessagePack would write these itself, as values ckptkit reads as tags.
            raise self.refuse(
                path, f"is a {type(value).__name__} of msgpack; unwrap it"
            )
        user = leaf_type_for(type(value))
        if user is not None:
            self._visit_user(value, path, depth, user)
        elif isinstance(value, torch.Tensor):
            self._leaf(value, path, self.tensors.add_tensor)
        elif type(value) is torch.Generator:
            self._leaf(value, path, self.tensors.add_generator)
        elif _is_numpy(value):
            self._leaf(value, path, self.tensors.add_numpy)
        else:
            self._visit_value(value, path, depth)

    def _leaf(self, value: Any, path: _Path, add: Any) -> None:
        try:
            index = add(value, _flat(path))
        except TypeError as error:
            raise self.refuse(path, str(error)) from None
        self.replacements[id(value)] = [values.MARKS[values.Tag.LEAF], index]

    def _visit_user(self, value: Any, path: _Path, depth: int, user: LeafType) -> None:
        name = user.name
        try:
            stored = user.encode(value)
        except Exception as error:
            reason = f"could not be converted by the converter registered as {name!r}"
            raise self.refuse(path, f"{reason}: {error}") from error
        self.replacements[id(value)] = [values.MARKS[values.Tag.USER], name, stored]
        self.visit(stored, path, depth + 1)

    def _visit_value(self, value: Any, path: _Path, depth: int) -> None:
        try:
            node = values.to_node(value)
        except TypeError as error:
            raise self.refuse(path, f"is {error}") from None
        if node is None:
            kind = type(value)
            name = f"{kind.__module__}.{kind.__qualname__}"
            hint = values.refusal_hint(value)
            raise self.refuse(
                path, f"is a {name}, which ckptkit does not store; {hint}"
            )
        if isinstance(value, tuple):  # a namedtuple: its items are state too
            self._visit_items(value, path, depth)


def _is_numpy(value: object) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and (
        type(value) is numpy.ndarray or isinstance(value, numpy.generic)
    )


def encode_state(state: object) -> Encoded:
    """Split ``state`` into a skeleton, tensor leaves and container entries.

    Raises:
        SerializationError: A value ckptkit cannot keep exactly (the message names
            its path inside the state and what to store instead).
    """
    walker = _Walker()
    try:
        walker.visit(state, None, 0)
    except RecursionError:
        msg = (
            "state is nested too deeply for Python's stack (or contains itself); "
            "flatten it"
        )
        raise SerializationError(msg) from None
    try:
        leaves, entries = walker.tensors.finish()
    except TypeError as error:
        raise SerializationError(str(error)) from None
    tree = pack_skeleton(state, walker.replacements)
    return Encoded(tree=tree, leaves=leaves, entries=entries)
