"""Migration registries: declared steps between versions of a checkpoint schema.

A training project declares how each version of its checkpoint state becomes the
next; ckptkit finds the one chain between two versions, applies it in memory on
``load(..., registry=...)``, or rewrites files with ``migrate``. The steps must
form one linear chain up to ``current`` (see ``_chain`` for why); a
registry that does not is refused, at registration where possible, else by
``check()``, which every migration runs first. docs/ckptkit/migrations.md is the guide.

Example:
    >>> import ckptkit
    >>> registry = ckptkit.MigrationRegistry(schema="demo", current="1.1")
    >>> @registry.migration("1.0", "1.1")
    ... def add_epoch(state):
    ...     '''1.0 -> 1.1: states record the epoch (0 for older ones).'''
    ...     state["epoch"] = 0
    ...     return state
    >>> new_state, applied = registry.migrate({"step": 5}, "1.0")
    >>> new_state, [record.to_version for record in applied]
    ({'step': 5, 'epoch': 0}, ['1.1'])
"""

from __future__ import annotations

from ckptkit.migrations._chain import Migration
from ckptkit.migrations._diff import StateChange
from ckptkit.migrations._disk import MigrationResult, migrate
from ckptkit.migrations._registry import MigrationRegistry

__all__ = [
    "Migration",
    "MigrationRegistry",
    "MigrationResult",
    "StateChange",
    "migrate",
]
