"""What a migration changed, as dotted keys: the summary ``ckptkit.migrate`` reports.

Keys added, removed, or changed in type, dtype, shape or value (a dry run shows
it before anything is written).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class StateChange:
    """One difference between a state before and after migration.

    Attributes:
        key: Dotted path of the entry (``"model.ema.w"``); ``""`` is the root.
        kind: ``"added"``, ``"removed"`` or ``"changed"``.
        what: For ``"changed"``: which of ``"type"``, ``"dtype"``, ``"shape"``,
            ``"value"``, ``"order"`` (of a dict's keys) changed; else empty.
        before: Short description of the old entry (None when added).
        after: Short description of the new entry (None when removed).
    """

    key: str
    kind: ChangeKind
    what: tuple[str, ...]
    before: str | None
    after: str | None

    def __str__(self) -> str:
        key = self.key or "(root)"
        if self.kind == "added":
            return f"+ {key}: {self.after}"
        if self.kind == "removed":
            return f"- {key}: {self.before}"
        return f"~ {key} ({', '.join(self.what)}): {self.before} -> {self.after}"


def describe(value: Any) -> str:
    """A short description of an entry: its type, and dtype and shape if any."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"tensor {dtype} {tuple(value.shape)}"
    shape = getattr(value, "shape", None)
    array_dtype = getattr(value, "dtype", None)
    if shape is not None and array_dtype is not None:  # numpy arrays and scalars
        return f"{type(value).__name__} {array_dtype} {tuple(shape)}"
    if isinstance(value, dict):
        return f"{type(value).__name__} ({len(value)} keys)"
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return f"{type(value).__name__} ({len(value)} items)"
    return type(value).__name__


def _join(key: str, part: object) -> str:
    return f"{key}.{part}" if key else str(part)


def tensor_bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor (bit-exact, nan included)."""
    flat = tensor.detach().resolve_conj().resolve_neg().contiguous().reshape(-1)
    if flat.numel() == 0:
        return torch.empty(0, dtype=torch.uint8)
    return flat.view(torch.uint8)


def _same_value(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        return bool(torch.equal(tensor_bits(before).cpu(), tensor_bits(after).cpu()))
    if hasattr(before, "tobytes") and hasattr(after, "tobytes"):
        return bool(before.tobytes() == after.tobytes())
    if isinstance(before, float):
        return float.hex(before) == float.hex(after)  # nan == nan, -0.0 != 0.0
    return bool(before == after)


def _leaf_change(key: str, before: Any, after: Any) -> StateChange | None:
    if before is after:
        return None
    what: list[str] = []
    # A Parameter saved and loaded comes back a Tensor: the same state.
    both_tensors = isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)
    if type(before) is not type(after) and not both_tensors:
        what.append("type")
    else:
        if getattr(before, "dtype", None) != getattr(after, "dtype", None):
            what.append("dtype")
        if tuple(getattr(before, "shape", ())) != tuple(getattr(after, "shape", ())):
            what.append("shape")
        if not what and not _same_value(before, after):
            what.append("value")
    if not what:
        return None
    return StateChange(key, "changed", tuple(what), describe(before), describe(after))


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not isinstance(value, torch.Size)


def _entries(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else dict(enumerate(value))


def _diff(key: str, before: Any, after: Any, out: list[StateChange]) -> None:
    same_type = type(before) is type(after)
    if same_type and (isinstance(before, dict) or _is_sequence(before)):
        old, new = _entries(before), _entries(after)
        for part, value in old.items():
            if part in new:
                _diff(_join(key, part), value, new[part], out)
            else:
                out.append(
                    StateChange(_join(key, part), "removed", (), describe(value), None)
                )
        out.extend(
            StateChange(_join(key, part), "added", (), None, describe(value))
            for part, value in new.items()
            if part not in old
        )
        # Always equal for lists and tuples (their kept indices are 0, 1, ...).
        kept = [part for part in old if part in new]
        if kept != [part for part in new if part in old]:
            text = describe(before)
            out.append(StateChange(key, "changed", ("order",), text, describe(after)))
    else:
        change = _leaf_change(key, before, after)
        if change is not None:
            out.append(change)


def diff_states(before: Any, after: Any) -> tuple[StateChange, ...]:
    """Every difference between two states, sorted by key.

    Entries that are the same object on both sides are not compared further,
    so diffing a migrated state against its source costs little for the many
    tensors no step touched.
    """
    changes: list[StateChange] = []
    _diff("", before, after, changes)
    return tuple(sorted(changes, key=lambda change: change.key))
