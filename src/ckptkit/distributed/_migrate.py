"""Migrations (``registry=``) when loading a sharded checkpoint into a state.

A sharded checkpoint is never whole in one process, so a migration step cannot
see tensor data. It sees the stored state with every tensor replaced by a
*meta* tensor of the stored shape and dtype (numpy arrays too), and real
values everywhere else: exactly the state ``ckptkit.load`` would give, minus the
tensor bytes. Steps that rename, move, drop or add entries, change values, or
add new tensors (``torch.zeros(...)``) work; the result is mapped back to the
stored tensors by identity. A step that computes a tensor from a stored one
(``w * 2``, ``w.t()``) yields a new meta tensor and is refused with
``MigrationError``: consolidate the checkpoint (``ckptkit consolidate``),
migrate the file, and load that, or write the step to keep tensors as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckptkit._file.tensor_leaves import path_text
from ckptkit._file.tree_v1 import Encoder
from ckptkit.distributed._storage_reader import meta_state
from ckptkit.errors import MigrationError
from ckptkit.migrations._checkpoints import refuse_incompatible
from ckptkit.migrations._run import run_chain

if TYPE_CHECKING:
    import torch

    from ckptkit.distributed._sources import Source
    from ckptkit.info import MigrationRecord
    from ckptkit.migrations import MigrationRegistry


class _MigratedEncoder(Encoder):
    """Encodes a migrated state, mapping stored tensors back to their keys."""

    def __init__(self, keys: dict[int, tuple[str, str]], path: str) -> None:
        super().__init__()
        self._keys, self._path = keys, path
        self._number_of: dict[str, int] = {}
        self.made: dict[str, torch.Tensor] = {}

    def _tensor_leaf(
        self, tensor: torch.Tensor, path: tuple[object, ...], kind: str, key_id: int
    ) -> int:
        del key_id
        stored = self._keys.get(id(tensor))
        if stored is not None:
            kind, key = stored
        elif tensor.device.type == "meta":
            msg = (
                f"{path_text(path)}: a migration step computed this tensor from "
                "stored tensors, which a sharded load cannot do (no tensor data is "
                "in memory); consolidate the checkpoint, migrate the file, or keep "
                "stored tensors as they are"
            )
            raise MigrationError(msg, self._path)
        else:
            key = f"@migrated.{self._unique_name(path)}"
            self.made[key] = tensor
        if key not in self._number_of:
            self._number_of[key] = len(self.leaves)
            self.leaves.append({"kind": kind, "key": key})
        return self._number_of[key]


@dataclass
class MigratedTree:
    """The migration of one load: registry, target version, steps applied."""

    registry: MigrationRegistry
    to_version: str | None
    applied: tuple[MigrationRecord, ...] = ()

    def prepare(
        self, source: Source
    ) -> tuple[Any, tuple[dict[str, Any], ...], dict[str, torch.Tensor]]:
        """Migrate the stored tree; return tree, leaves and the tensors steps made.

        Raises:
            SchemaMismatchError: The checkpoint has another schema.
            UnsupportedVersionError: It is newer than the registry's current.
            MigrationError: No chain, a failing step, or a step that computed a
                tensor from stored tensors.
        """
        index = source.index
        chain = refuse_incompatible(source.info, self.registry, self.to_version)
        if not chain:
            return index.tree, index.leaves, {}
        state, metas = meta_state(index)
        kinds = {leaf["key"]: leaf["kind"] for leaf in index.leaves}
        migrated, self.applied = run_chain(state, chain, path=source.path)
        encoder = _MigratedEncoder(
            {id(t): (kinds[key], key) for key, t in metas.items()}, str(source.path)
        )
        tree = encoder.encode(migrated, ())
        return tree, tuple(encoder.leaves), encoder.made
