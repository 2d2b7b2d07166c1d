"""A header's tensor entries, and the state's leaves checked against them.

What ``validate`` checks at "quick" is what ``load`` relies on: entries that tile
the data exactly, and leaves that each name an entry and can be built from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import torch

from ckptkit._file.format import LEAF_KINDS, SKELETON_ENTRY, TORCH_DTYPES
from ckptkit._file.leaf_views import shaped
from ckptkit.errors import CheckpointCorruptError, TruncatedCheckpointError

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class EntrySpec:
    """Where one tensor's bytes lie (offsets relative to the data start)."""

    name: str
    dtype: torch.dtype
    dtype_name: str
    shape: tuple[int, ...]
    begin: int
    end: int


_INT64_LIMIT = 1 << 63


def _is_count(value: object) -> TypeGuard[int]:
    """A JSON integer that fits int64 and is not negative (no bool, no float)."""
    return type(value) is int and 0 <= value < _INT64_LIMIT


def _counts(value: object, length: int | None = None) -> tuple[int, ...] | None:
    """``value`` as a tuple of counts (of ``length`` items, if given), else None."""
    if not isinstance(value, list) or not all(_is_count(n) for n in value):
        return None
    if length is not None and len(value) != length:
        return None
    return tuple(value)


def check_entries(
    path: Path, top: dict[str, Any], data_len: int
) -> dict[str, EntrySpec]:
    """The tensor entries of a header, checked to tile ``data_len`` bytes exactly.

    Raises:
        CheckpointCorruptError: A malformed entry, an overlap or a gap.
        TruncatedCheckpointError: The entries need other than ``data_len`` bytes.
    """
    entries: dict[str, EntrySpec] = {}
    for name, spec in top.items():
        fields = spec if isinstance(spec, dict) else {}
        stored = fields.get("dtype")
        dtype_name = TORCH_DTYPES.get(stored) if isinstance(stored, str) else None
        shape = _counts(fields.get("shape"))
        offsets = _counts(fields.get("data_offsets"), 2)
        if dtype_name is None or shape is None or offsets is None:
            reason = f"tensor {name!r} has a malformed header entry"
            raise CheckpointCorruptError(path, reason)
        dtype = getattr(torch, dtype_name)
        begin, end = offsets
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            raise CheckpointCorruptError(
                path, f"tensor {name!r}: offsets do not match its dtype and shape"
            )
        entries[name] = EntrySpec(name, dtype, dtype_name, shape, begin, end)
    position = 0
    for spec in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if spec.begin != position:
            raise CheckpointCorruptError(
                path, f"tensor {spec.name!r} overlaps another or leaves a gap"
            )
        position = spec.end
    if position != data_len:
        raise TruncatedCheckpointError(
            path,
            f"tensor data should be {position} bytes but the file holds {data_len}: "
            "truncated or damaged; restore it from a copy or recompute it",
        )
    return entries


def check_tree_agrees(
    path: Path, header: dict[str, Any], entries: dict[str, EntrySpec], limit: int
) -> None:
    """Check that the leaves use every entry, each as it can (views ``<= limit``).

    Raises:
        CheckpointCorruptError: A checksum, skeleton or leaf that disagrees.
    """
    if set(header["checksums"]) != set(entries):
        raise CheckpointCorruptError(
            path, "the header's checksums do not list exactly the stored tensors"
        )
    used: set[str] = set()
    if header["format_version"] >= 2:  # noqa: PLR2004 - the skeleton's own entry
        skeleton = entries.get(SKELETON_ENTRY)
        if (
            skeleton is None
            or skeleton.dtype_name != "uint8"
            or len(skeleton.shape) != 1
            or skeleton.end == skeleton.begin
        ):
            raise CheckpointCorruptError(path, "the state's skeleton is not stored")
        used.add(SKELETON_ENTRY)
    for index, leaf in enumerate(header["leaves"]):
        used.add(_check_leaf(path, index, leaf, entries, limit))
    if used != set(entries):
        raise CheckpointCorruptError(
            path, "some stored tensors belong to no part of the state"
        )


def _check_leaf(
    path: Path,
    index: int,
    leaf: object,
    entries: dict[str, EntrySpec],
    limit: int,
) -> str:
    """Check one leaf against its entry; return the entry's name."""
    name = leaf.get("entry") if isinstance(leaf, dict) else None
    entry = entries.get(name) if isinstance(name, str) else None
    if entry is None or not isinstance(leaf, dict):
        raise CheckpointCorruptError(
            path, f"state leaf {index} refers to a tensor that is not stored"
        )
    if not _kind_known(leaf):
        raise CheckpointCorruptError(path, f"state leaf {index} has no known kind")
    view = leaf.get("view")
    if view is not None and not _view_fits(view, entry):
        raise CheckpointCorruptError(
            path, f"state leaf {index} reaches outside its stored bytes"
        )
    if view is not None and _view_bytes(view) > limit:
        raise CheckpointCorruptError(
            path,
            f"state leaf {index} is a view of {_view_bytes(view)} bytes over "
            f"{entry.end - entry.begin} stored bytes (zero or overlapping "
            f"strides), more than ckptkit rebuilds from a file of this size "
            f"(at most {limit} bytes); the file is damaged or crafted",
        )
    if not _leaf_fits(leaf, entry):
        raise CheckpointCorruptError(
            path,
            f"state leaf {index} does not fit its stored tensor "
            f"({entry.dtype_name} {list(entry.shape)})",
        )
    return entry.name


def _leaf_fits(leaf: dict[str, Any], entry: EntrySpec) -> bool:
    """Whether ``load`` can build the leaf from its entry (tried on ``meta``).

    Only leaves that reshape or convert their entry can fail (a view, a complex128
    pair, a numpy value, a parameter that requires grad): every reader refuses
    those here, so ``validate`` and ``load`` agree on a crafted dtype or shape.
    """
    kind = leaf.get("kind")
    if kind == "tensor" and "view" not in leaf and not leaf.get("complex128"):
        return True
    try:
        base = torch.empty(entry.shape, dtype=entry.dtype, device="meta")
        tensor = shaped(base, leaf)
        if kind in ("ndarray", "npscalar"):
            torch.empty(0, dtype=tensor.dtype).numpy()  # a dtype numpy has
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        return False
    if kind == "parameter" and leaf.get("requires_grad"):
        return tensor.is_floating_point() or tensor.is_complex()
    return True


def _kind_known(leaf: dict[str, Any]) -> bool:
    kind = leaf.get("kind")
    if type(kind) is not str or kind not in LEAF_KINDS:
        return False
    return kind != "generator" or type(leaf.get("device")) is str


def _view_dtype(view: dict[str, Any]) -> torch.dtype | None:
    dtype = getattr(torch, view["dtype"], None) if type(view["dtype"]) is str else None
    return dtype if isinstance(dtype, torch.dtype) else None


def _view_bytes(view: dict[str, Any]) -> int:
    """Bytes the (checked) view describes: what materialising it would take."""
    dtype = _view_dtype(view)
    count: int = math.prod(view["shape"])
    return count * (dtype.itemsize if dtype else 1)


def _view_fits(view: object, entry: EntrySpec) -> bool:
    """Whether a leaf's view lies inside its entry's bytes (and is well formed)."""
    if not isinstance(view, dict) or not {"dtype", "shape", "stride"} <= view.keys():
        return False
    dtype = _view_dtype(view)
    shape = _counts(view["shape"])
    stride = _counts(view["stride"], None if shape is None else len(shape))
    offset = view.get("offset")
    if dtype is None or shape is None or stride is None or not _is_count(offset):
        return False
    if math.prod(shape) == 0:
        return True
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    return (last + 1) * dtype.itemsize <= entry.end - entry.begin
