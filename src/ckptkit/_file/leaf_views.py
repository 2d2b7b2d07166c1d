"""A leaf's own view of its stored entry, and the value the leaf holds.

``shaped`` (a view of a blob, a complex128 pair) is shared by the reader
(``tensors.build_leaf``) and the header check, which tries it on ``meta`` tensors
so that every reader refuses a leaf ``load`` cannot build; ``leaf_value`` (the
tensor, or a numpy array or scalar over it) by every reader.
"""

from __future__ import annotations

from typing import Any

import torch


def shaped(tensor: torch.Tensor, leaf: dict[str, Any]) -> torch.Tensor:
    """The leaf's own view of its entry (structural: errors mean a damaged file)."""
    view = leaf.get("view")
    if view is not None:
        dtype = getattr(torch, view["dtype"])
        # The entry is a 1-D uint8 tensor at storage offset 0 (a blob).
        tensor = torch.empty(0, dtype=dtype, device=tensor.device).set_(
            tensor.untyped_storage(), int(view["offset"]), view["shape"], view["stride"]
        )
        if view.get("conj"):
            tensor = tensor.conj()
        if view.get("neg"):
            tensor = torch._neg_view(tensor)  # noqa: SLF001 - the only way to a neg view
    if leaf.get("complex128"):
        tensor = torch.view_as_complex(tensor)
    return tensor


def leaf_value(kind: object, tensor: torch.Tensor) -> object:
    """What a leaf of ``kind`` holds: ``tensor``, or its numpy array or scalar."""
    if kind == "ndarray":
        return tensor.numpy()
    return tensor.numpy()[()] if kind == "npscalar" else tensor
