"""Helpers for testing a project's own migrations (ckptkit's tests use them too).

``check_migration_roundtrip`` runs every property ckptkit promises for one state:
the caller's state is untouched bit for bit, migrating in one call equals
migrating through every intermediate version, a migrated state migrates to
itself with no step, named keys come back bit-identical, and the same state
saved to a file and migrated on disk (or loaded with the registry) is equal.
Feed it states from hypothesis (``states()`` and ``tensors()`` below need
``pip install hypothesis``; the checks themselves do not).

Example:
    >>> import ckptkit
    >>> from ckptkit.testing import check_migration_roundtrip
    >>> registry = ckptkit.MigrationRegistry(schema="demo")
    >>> @registry.migration("1.0", "1.1")
    ... def add_epoch(state):
    ...     return {**state, "epoch": 0}
    >>> check_migration_roundtrip(registry, {"step": 3}, "1.0", untouched=["step"])
    {'step': 3, 'epoch': 0}
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._api import load, save
from ckptkit._file.versions import parse_version
from ckptkit.keys import split_key
from ckptkit.migrations import MigrationRegistry, migrate
from ckptkit.migrations._diff import diff_states

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hypothesis.strategies import SearchStrategy

    from ckptkit.info import MigrationRecord
    from ckptkit.types import StateTree

#: dtypes drawn by ``tensors()`` by default (every one ckptkit stores natively
#: except the float8 variants, which few projects keep in checkpoints).
DEFAULT_DTYPES: tuple[torch.dtype, ...] = (
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
)


def assert_same_state(actual: StateTree, expected: StateTree, what: str = "") -> None:
    """Fail unless two states are equal exactly (types, key order, tensor bits).

    Args:
        actual: The state obtained.
        expected: The state wanted.
        what: Words prefixed to the failure message.

    Raises:
        AssertionError: Listing every difference as a dotted key.
    """
    changes = diff_states(expected, actual)
    if changes:
        lines = "\n  ".join(str(change) for change in changes[:20])
        more = f"\n  ... {len(changes) - 20} more" if len(changes) > 20 else ""  # noqa: PLR2004
        prefix = f"{what}: " if what else ""
        msg = f"{prefix}states differ (expected -> actual):\n  {lines}{more}"
        raise AssertionError(msg)


def clone_state(state: StateTree) -> StateTree:
    """A deep copy whose tensors and arrays own their bytes (a snapshot)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        twin = state.copy()
        for key, value in state.items():
            twin[key] = clone_state(value)
        return twin
    if type(state) is list:
        return [clone_state(value) for value in state]
    if type(state) is tuple:
        return tuple(clone_state(value) for value in state)
    copy = getattr(state, "copy", None)
    if hasattr(state, "tobytes") and callable(copy):
        return copy()  # a numpy array
    return state


def get_key(state: StateTree, key: str) -> Any:
    """The entry at a dotted key (``"model.w"``, ``"optim.state.0"``).

    Raises:
        KeyError: The key is not in the state.
    """
    node = state
    for part in split_key(key):
        if isinstance(node, dict):
            match = [value for name, value in node.items() if str(name) == part]
            if not match:
                raise KeyError(key)
            node = match[0]
        elif isinstance(node, (list, tuple)) and part.isdigit():
            if int(part) >= len(node):
                raise KeyError(key)
            node = node[int(part)]
        else:
            raise KeyError(key)
    return node


def _expect(condition: bool, message: str) -> None:  # noqa: FBT001
    if not condition:
        raise AssertionError(message)


def _steps(records: Sequence[MigrationRecord]) -> list[tuple[str, str, str]]:
    return [(r.from_version, r.to_version, r.step) for r in records]


@dataclass(frozen=True)
class _RoundTrip:
    """One state migrated in one call: what the other routes must reproduce."""

    registry: MigrationRegistry
    state: StateTree
    from_version: str
    target: str
    whole: StateTree
    applied: tuple[MigrationRecord, ...]


def _check_splits(trip: _RoundTrip) -> None:
    registry = trip.registry
    for step in registry.path(trip.from_version, trip.target)[:-1]:
        middle = step.to_version
        part, first = registry.migrate(trip.state, trip.from_version, middle)
        rest, second = registry.migrate(part, middle, trip.target)
        route = f"{trip.from_version} -> {middle} -> {trip.target}"
        assert_same_state(rest, trip.whole, f"{route} differs from one call")
        _expect(
            _steps((*first, *second)) == _steps(trip.applied),
            f"{route} ran other steps than one call",
        )


def _check_on_disk(trip: _RoundTrip) -> None:
    registry, target = trip.registry, trip.target
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.ckpt"
        save(path, trip.state, version=trip.from_version, schema=registry.schema)
        loaded = load(path, verify="full", registry=registry, to_version=target)
        assert_same_state(loaded.state, trip.whole, "load(registry=) differs")
        result = migrate(path, registry, target, backup=False)
        on_disk = load(path, verify="full")
        assert_same_state(on_disk.state, trip.whole, "migrate() on disk differs")
        _expect(on_disk.info.version == result.to_version, "file version is wrong")
        _expect(
            _steps(on_disk.info.history) == _steps(result.applied),
            "the file's history does not list the steps run",
        )


def check_migration_roundtrip(
    registry: MigrationRegistry,
    state: StateTree,
    from_version: str,
    *,
    to_version: str | None = None,
    untouched: Sequence[str] = (),
) -> StateTree:
    """Check every migration property for one state and return the migrated one.

    Checks that the caller's ``state`` is unchanged bit for bit (no step wrote to
    a tensor or array it was given); that migrating in one call equals
    migrating to each intermediate version and on from there; that the result
    migrates to itself with no step; that each ``untouched`` key comes back
    bit-identical; and, unless ``from_version`` is legacy (ckptkit never writes
    0.x files), that saving ``state`` and migrating the file, or loading it
    with the registry, gives the same state and records the steps run.

    Args:
        registry: The registry under test.
        state: A state at ``from_version`` that ``ckptkit.save`` can store.
        from_version: Its version.
        to_version: Target; defaults to ``registry.current``.
        untouched: Dotted keys that no step may change.

    Returns:
        The migrated state.

    Raises:
        AssertionError: A property does not hold (the message says which).
        MigrationError: The registry is broken or a step failed.
    """
    target = registry.current if to_version is None else to_version
    snapshot = clone_state(state)
    whole, applied = registry.migrate(state, from_version, target)
    assert_same_state(state, snapshot, "the migration changed the caller's state")
    chain = registry.path(from_version, target)
    _expect(
        [(r.from_version, r.to_version) for r in applied]
        == [(s.from_version, s.to_version) for s in chain],
        "the history records differ from the chain",
    )
    trip = _RoundTrip(registry, state, from_version, target, whole, applied)
    _check_splits(trip)
    again, none = registry.migrate(whole, target, target)
    _expect(again is whole and none == (), "a migrated state is not left alone")
    for key in untouched:
        assert_same_state(get_key(whole, key), get_key(snapshot, key), key)
    if not parse_version(from_version).is_legacy:
        _check_on_disk(trip)
    return whole


def tensors(
    *,
    dtypes: Sequence[torch.dtype] = DEFAULT_DTYPES,
    max_dims: int = 3,
    max_side: int = 4,
) -> SearchStrategy[torch.Tensor]:
    """A hypothesis strategy of small tensors with arbitrary bits (nan included).

    Args:
        dtypes: dtypes to draw from.
        max_dims: Most dimensions (0-d tensors included).
        max_side: Largest size of a dimension (0 included).

    Returns:
        The strategy (needs ``hypothesis``).
    """
    from hypothesis import strategies as st

    @st.composite
    def draw_tensor(draw: st.DrawFn) -> torch.Tensor:
        dtype = draw(st.sampled_from(list(dtypes)))
        shape = draw(st.lists(st.integers(0, max_side), max_size=max_dims))
        count = math.prod(shape)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        raw = bytearray(
            draw(st.binary(min_size=count * itemsize, max_size=count * itemsize))
        )
        if dtype is torch.bool:
            raw = bytearray(b & 1 for b in raw)
        if not count:
            return torch.empty(shape, dtype=dtype)
        flat = torch.frombuffer(raw, dtype=torch.uint8)
        return flat.view(dtype).reshape(shape)

    return draw_tensor()


def states(*, max_leaves: int = 10) -> SearchStrategy[StateTree]:
    """A hypothesis strategy of nested states that ckptkit stores exactly.

    Dicts with str keys, lists and tuples of None, bool, int, float (nan too),
    str, bytes and ``tensors()``.

    Args:
        max_leaves: Rough upper bound on the number of leaves.

    Returns:
        The strategy (needs ``hypothesis``).
    """
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=6),
        st.binary(max_size=6),
        tensors(),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=5), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


__all__ = [
    "DEFAULT_DTYPES",
    "assert_same_state",
    "check_migration_roundtrip",
    "clone_state",
    "get_key",
    "states",
    "tensors",
]
