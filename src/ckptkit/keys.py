"""Dotted key paths into a state (``"optim.state.0.exp_avg"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def split_key(key: str) -> tuple[str, ...]:
    """Split a dotted key into its parts (``"a.b.0"`` -> ``("a", "b", "0")``)."""
    return tuple(key.split(".")) if key else ()


def _key_text(node: Any) -> str | None:
    if node is None or isinstance(node, (bool, str)):
        return str(node)
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if kind == "int":
            return str(body)
        if kind == "float":
            return repr(float.fromhex(body))
    return None


def _children(node: Any) -> list[tuple[str, Any]] | None:
    if not (isinstance(node, dict) and len(node) == 1):
        return None
    ((kind, body),) = node.items()
    if kind in ("dict", "odict"):
        return [(_key_text(k) or "", v) for k, v in body]
    if kind in ("list", "tuple"):
        return [(str(i), v) for i, v in enumerate(body)]
    return None


def find_node(tree: Any, parts: Sequence[str]) -> Any | None:
    """The skeleton node at a dotted path, or None if it does not exist."""
    node = tree
    for part in parts:
        children = _children(node)
        if children is None:
            return None
        match = [child for name, child in children if name == part]
        if not match:
            return None
        node = match[0]
    return node


_MISSING = object()


def lookup(state: Any, key: str, default: Any = _MISSING) -> Any:
    """The value at a dotted ``key`` in a plain (loaded) state.

    Dict keys match by ``str(key)``; list and tuple items by index.

    Raises:
        KeyError: The key is not in the state and no ``default`` was given.
    """
    node = state
    for part in split_key(key):
        if isinstance(node, dict):
            matches = [v for k, v in node.items() if str(k) == part]
            if matches:
                node = matches[0]
                continue
        elif (
            isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node)
        ):
            node = node[int(part)]
            continue
        if default is _MISSING:
            raise KeyError(key)
        return default
    return node


def has_key(tree: Any, key: str) -> bool:
    """True when the dotted ``key`` exists in the state skeleton."""
    return find_node(tree, split_key(key)) is not None or (
        key == "" and tree is not None
    )


def select_keys(tree: Any, paths: Sequence[tuple[str, ...]], file: Path) -> Any:
    """Prune a skeleton to the given paths, keeping the containers around them.

    Raises:
        KeyError: A path is not in the state.
    """
    for parts in paths:
        if find_node(tree, parts) is None:
            msg = f"{file}: key {'.'.join(parts)!r} is not in the checkpoint"
            raise KeyError(msg)
    return _prune(tree, list(paths))


def _prune(node: Any, paths: list[tuple[str, ...]]) -> Any:
    if any(len(p) == 0 for p in paths):
        return node
    ((kind, body),) = node.items()
    if kind in ("dict", "odict"):
        kept = []
        for key, value in body:
            sub = [p[1:] for p in paths if p[0] == _key_text(key)]
            if sub:
                kept.append([key, _prune(value, sub)])
        return {kind: kept}
    kept_items = []
    for index, value in enumerate(body):
        sub = [p[1:] for p in paths if p[0] == str(index)]
        if sub:
            kept_items.append(_prune(value, sub))
    return {kind: kept_items}
