r"""Key paths into a state: ``"optim.state.0.exp_avg"`` or ``("model", "a.b")``.

A key path names one value inside a state, one *part* per level. It is given
either as a dotted string or as a sequence of parts:

- ``"model.layer.weight"``: parts split at each ``.``; write ``\.`` for a dot
  that belongs to a name and ``\\`` for a backslash
  (``"model._orig_mod\.tok_emb\.weight"`` is two parts);
- ``("model", "_orig_mod.tok_emb.weight")``: the parts themselves, dots and all.

A ``str`` part matches a dict key that is that string, or an int, float, bool or
None key whose ``str()`` it is (``"0"`` matches the key ``0``), and a list or
tuple index written in decimal. Any other part matches a dict key equal to it
and of its type (``("metrics", ("train", 3))``) or, as an int, a list index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pathlib import Path

#: A key path: a dotted string, or a sequence of parts.
KeyPath: TypeAlias = str | Sequence[Any]

_TEXT_KEYS = (str, int, float, bool, type(None))
_MISSING = object()


def split_key(key: str) -> tuple[str, ...]:
    r"""Split a dotted key into its parts, honouring ``\.`` and ``\\`` escapes.

    Example:
        >>> split_key("model.w")
        ('model', 'w')
        >>> split_key(r"model._orig_mod\.w")
        ('model', '_orig_mod.w')
        >>> split_key("")
        ()
    """
    if not key:
        return ()
    if "\\" not in key:
        return tuple(key.split("."))
    parts: list[str] = []
    current: list[str] = []
    chars = iter(key)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(parts)


def key_text(parts: Sequence[Any]) -> str:
    r"""A key path as one dotted string (dots and backslashes in parts escaped)."""
    return ".".join(
        str(part).replace("\\", "\\\\").replace(".", "\\.") for part in parts
    )


def key_parts(key: object, *, argument: str = "key") -> tuple[Any, ...]:
    """The parts of one key path.

    Raises:
        TypeError: ``key`` is neither a str nor a list or tuple of parts.
    """
    if isinstance(key, str):
        return split_key(key)
    if isinstance(key, (list, tuple)):
        return tuple(key)
    msg = (
        f"{argument} takes key paths, each a dotted str or a list/tuple of "
        f"parts, not {type(key).__name__} ({key!r})"
    )
    raise TypeError(msg)


def key_paths(keys: object, *, argument: str) -> list[tuple[Any, ...]]:
    """The parts of every key path of an argument (``keys=``, ``required_keys=``).

    Raises:
        TypeError: ``keys`` is a single str (``keys="model"`` for ``["model"]``),
            or not a collection of key paths.
    """
    if isinstance(keys, (str, bytes)):
        msg = (
            f"{argument} takes a list of key paths, not a single str: pass "
            f"{argument}=[{keys!r}]"
        )
        raise TypeError(msg)
    if not isinstance(keys, (list, tuple, set, frozenset)):
        msg = f"{argument} takes a list of key paths, not {type(keys).__name__}"
        raise TypeError(msg)
    return [key_parts(key, argument=argument) for key in keys]


def _matches(name: object, part: object) -> bool:
    if type(part) is str:
        return name == part or (
            type(name) in _TEXT_KEYS and type(name) is not str and str(name) == part
        )
    return type(name) is type(part) and name == part


def _index(node: Sequence[Any], part: object) -> int | None:
    if type(part) is str and part.isdecimal():
        index = int(part)
    elif type(part) is int:
        index = part
    else:
        return None
    return index if 0 <= index < len(node) else None


def _child(node: object, part: object) -> object:
    if isinstance(node, dict):
        for name, value in node.items():
            if _matches(name, part):
                return value
        return _MISSING
    if type(node) in (list, tuple):
        index = _index(node, part)  # type: ignore[arg-type]
        return _MISSING if index is None else node[index]  # type: ignore[index]
    return _MISSING


def lookup(state: Any, key: KeyPath, default: Any = _MISSING) -> Any:
    """The value at a key path in a state.

    Raises:
        KeyError: The key is not in the state and no ``default`` was given.
    """
    node = state
    for part in key_parts(key):
        node = _child(node, part)
        if node is _MISSING:
            if default is _MISSING:
                raise KeyError(key if isinstance(key, str) else key_text(key))
            return default
    return node


def has_key(state: Any, key: KeyPath) -> bool:
    """True when the key path exists in the state (the empty path always does)."""
    absent = object()
    return lookup(state, key, absent) is not absent


def select_keys(state: Any, paths: Sequence[tuple[Any, ...]], file: Path) -> Any:
    """Prune a state to the given key paths, keeping the containers around them.

    Raises:
        KeyError: A path is not in the state (the message names the file).
    """
    for parts in paths:
        if not has_key(state, parts):
            msg = f"{file}: key '{key_text(parts)}' is not in the checkpoint"
            raise KeyError(msg)
    return _prune(state, list(paths))


def _prune(node: Any, paths: list[tuple[Any, ...]]) -> Any:
    if any(len(p) == 0 for p in paths):
        return node
    if isinstance(node, dict):
        kept = []
        for name, value in node.items():
            sub = [p[1:] for p in paths if _matches(name, p[0])]
            if sub:
                kept.append((name, _prune(value, sub)))
        return OrderedDict(kept) if type(node) is OrderedDict else dict(kept)
    items = []
    for index, value in enumerate(node):
        sub = [p[1:] for p in paths if _index(node, p[0]) == index]
        if sub:
            items.append(_prune(value, sub))
    return tuple(items) if type(node) is tuple else items
