"""ckptkit's DCP planners: DCP's default planning, ckptkit's tree for the rest.

``SavePlanner`` hands DCP only the tensors of a state (keyed by their dotted
path; DTensors stay DTensors, so DCP plans their shards and deduplicates
replicated tensors) and carries each rank's JSON tree in its local plan; the
coordinator merges the trees into the global metadata. ``LoadPlanner`` plans
the filling of the caller's state from the stored tree (and, with a registry,
from the migrated tree), asks DCP for the tensors only, and sets the values
once they are read. Both are DCP's default planners underneath, so resharding
is DCP's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.checkpoint.default_planner import (
    DefaultLoadPlanner,
    DefaultSavePlanner,
)
from torch.distributed.tensor import DTensor

from ckptkit._file.digest import digest
from ckptkit.distributed._errors import portable
from ckptkit.distributed._fill import FillPlan, plan_fill
from ckptkit.distributed._tree import SavedTree, merge_trees, split_state

#: DCP sorts the top-level keys it is given and treats ``Stateful`` values there
#: specially: ``ckd.save``/``ckd.load`` hand it the state under this one key and
#: do the ``Stateful`` part themselves, so any state (int keys, a list) passes.
ROOT_KEY = "state"

if TYPE_CHECKING:
    from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
    from torch.distributed.checkpoint.planner import SavePlan

    from ckptkit.distributed._migrate import MigratedTree
    from ckptkit.distributed._storage_reader import StorageReader
    from ckptkit.info import MigrationRecord


def _plain_digests(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """xxh3 of each plain tensor: DCP keeps one rank's copy, so ranks must agree."""
    found: dict[str, str] = {}
    for key, tensor in tensors.items():
        if isinstance(tensor, DTensor):
            continue
        host = tensor.detach().cpu().contiguous().reshape(-1)
        if host.dtype is torch.complex128:
            host = torch.view_as_real(host.resolve_conj()).reshape(-1)
        found[key] = digest(
            host.resolve_conj().resolve_neg().view(torch.uint8).numpy().data
        )
    return found


class SavePlanner(DefaultSavePlanner):
    """DCP's ``DefaultSavePlanner`` over the tensors of a ckptkit-encoded state."""

    def __init__(self) -> None:
        super().__init__(flatten_state_dict=False)
        self._tree = SavedTree(None, [])

    @portable
    def set_up_planner(
        self,
        state_dict: dict[str, Any],
        storage_meta: StorageMeta | None = None,
        is_coordinator: bool = False,  # noqa: FBT001, FBT002 - DCP's signature
    ) -> None:
        """Split the state into its tree and tensors; plan the tensors."""
        tree, tensors = split_state(state_dict[ROOT_KEY])
        self._tree = dataclasses.replace(tree, digests=_plain_digests(tensors))
        super().set_up_planner(tensors, storage_meta, is_coordinator)

    @portable
    def create_local_plan(self) -> SavePlan:
        """DCP's plan, carrying this rank's tree to the coordinator."""
        plan = super().create_local_plan()
        return dataclasses.replace(plan, planner_data=self._tree)

    @portable
    def create_global_plan(
        self, all_plans: list[SavePlan]
    ) -> tuple[list[SavePlan], Metadata]:
        """DCP's global plan; the merged tree becomes the metadata's planner data."""
        trees = [plan.planner_data for plan in all_plans]
        plans, metadata = super().create_global_plan(all_plans)
        merged = merge_trees(trees)
        self.metadata = dataclasses.replace(metadata, planner_data=merged)
        return plans, self.metadata


class LoadPlanner(DefaultLoadPlanner):
    """DCP's ``DefaultLoadPlanner`` filling a state as ``ckd.load`` documents."""

    def __init__(
        self, reader: StorageReader, migrated: MigratedTree | None = None
    ) -> None:
        super().__init__(flatten_state_dict=False)
        self._reader = reader
        self._migrated = migrated
        self.fill = FillPlan()
        self.applied: tuple[MigrationRecord, ...] = ()

    @portable
    def set_up_planner(
        self,
        state_dict: dict[str, Any],
        metadata: Metadata | None = None,
        is_coordinator: bool = False,  # noqa: FBT001, FBT002 - DCP's signature
    ) -> None:
        """Plan the filling of the caller's state; give DCP its tensors."""
        index = self._reader.source().index
        tree, leaves = index.tree, index.leaves
        made: dict[str, torch.Tensor] = {}
        if self._migrated is not None:
            tree, leaves, made = self._migrated.prepare(self._reader.source())
            self.applied = self._migrated.applied
        self.fill = plan_fill(state_dict[ROOT_KEY], tree, leaves, index.tensors, made)
        super().set_up_planner(self.fill.targets, metadata, is_coordinator)

    def finish_values(self) -> None:
        """Set every value of the state (``ckd.load`` calls it after the read)."""
        self.fill.apply()
