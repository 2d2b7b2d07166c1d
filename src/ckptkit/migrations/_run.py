"""Running a chain of migration steps on a state, never changing the caller's.

Copy semantics (documented in docs/ckptkit/migrations.md): before every step the
container tree (dicts, OrderedDicts, lists, tuples) is copied, so a step may add,
remove, rename and replace entries freely without touching the caller's state.
Tensors and numpy arrays are shared, never copied: a checkpoint can be most of a
machine's memory. A step must therefore not change a tensor in place; it returns
a new one (``w * 2``, ``w.to(torch.float16)``). Every in-place torch operation
bumps the tensor's version counter, so ckptkit compares the counters of the
tensors a step received before and after it and refuses a step that wrote to one.
``ckptkit.testing`` additionally compares every byte.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.format import utc_now_iso
from ckptkit._file.versions import library_version
from ckptkit.errors import MigrationError
from ckptkit.info import MigrationRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ckptkit.migrations._chain import Migration
    from ckptkit.types import PathLike, StateTree


def copy_containers(state: StateTree, memo: dict[int, Any] | None = None) -> Any:
    """Copy dicts, lists and tuples of ``state``; share every other leaf.

    Containers that appear twice stay shared in the copy (as with ``deepcopy``).
    """
    memo = {} if memo is None else memo
    found = memo.get(id(state))
    if found is not None:
        return found
    if isinstance(state, dict):
        twin = copy.copy(state)  # keeps the type (OrderedDict) and its extras
        memo[id(state)] = twin
        for key, value in state.items():
            twin[key] = copy_containers(value, memo)
        return twin
    if isinstance(state, list):
        items: list[Any] = copy.copy(state)
        memo[id(state)] = items
        items[:] = [copy_containers(value, memo) for value in state]
        return items
    if type(state) is tuple:
        return tuple(copy_containers(value, memo) for value in state)
    return state


def _tensor_versions(
    node: Any, key: str, out: dict[int, tuple[str, torch.Tensor, int]]
) -> None:
    if isinstance(node, torch.Tensor):
        # The version counter is how autograd detects in-place writes; it is not in
        # torch's stubs, hence getattr.
        out.setdefault(id(node), (key, node, int(getattr(node, "_version", 0))))
    elif isinstance(node, dict):
        for name, value in node.items():
            _tensor_versions(value, f"{key}.{name}" if key else str(name), out)
    elif isinstance(node, (list, tuple)) and not isinstance(node, torch.Size):
        for index, value in enumerate(node):
            _tensor_versions(value, f"{key}.{index}" if key else str(index), out)


def _step_text(step: Migration) -> str:
    return f"{step.name} ({step.from_version} -> {step.to_version})"


def _run_step(step: Migration, state: StateTree, path: PathLike | None) -> Any:
    work = copy_containers(state)
    before: dict[int, tuple[str, torch.Tensor, int]] = {}
    _tensor_versions(work, "", before)
    try:
        result = step.func(work)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        raise MigrationError(
            f"migration step {_step_text(step)} failed at version "
            f"{step.from_version}: {type(error).__name__}: {message}",
            path,
        ) from error
    if result is None:
        raise MigrationError(
            f"migration step {_step_text(step)} returned None: return the new "
            "state (the argument you changed, or a new tree)",
            path,
        )
    for key, tensor, version in before.values():
        if int(getattr(tensor, "_version", 0)) != version:
            raise MigrationError(
                f"migration step {_step_text(step)} changed the tensor at "
                f"{key or 'the root'!r} in place; tensors are shared with the "
                "caller, so return a new one (w * 2, w.to(dtype), w.clone().mul_(2))",
                path,
            )
    return result


def run_chain(
    state: StateTree, chain: Sequence[Migration], *, path: PathLike | None = None
) -> tuple[StateTree, tuple[MigrationRecord, ...]]:
    """Apply ``chain`` to ``state`` in order; the caller's state is never changed.

    Raises:
        MigrationError: A step raised, returned None or wrote to a tensor in
            place (the message names the step and its version).
    """
    records: list[MigrationRecord] = []
    for step in chain:
        state = _run_step(step, state, path)
        records.append(
            MigrationRecord(
                from_version=step.from_version,
                to_version=step.to_version,
                step=step.name,
                applied_at=utc_now_iso(),
                ckptkit_version=library_version(),
            )
        )
    return state, tuple(records)
