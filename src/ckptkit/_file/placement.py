"""Where loaded tensors go (``map_location``) and what they become (``dtype``).

Both are checked before any file is read, so a caller's mistake (a typo in a
device name, a torch.load-style dict, a dtype passed as a device) raises at once,
naming the argument, and is never taken for damage to a checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch

_CPU = torch.device("cpu")


def check_map_location(map_location: Any) -> torch.device:
    """The device ``map_location`` names, after checking it can hold tensors here.

    Raises:
        TypeError: Not a device: a dtype, a dict, a function or anything else.
        ValueError: A string that names no device, or a device this machine
            does not have (``"cuda"`` without CUDA, ``"cuda:7"`` on one GPU).
    """
    if map_location is None:
        return _CPU
    if isinstance(map_location, torch.dtype):
        msg = (
            f"map_location={map_location} is a dtype, not a device: ckptkit never "
            f"casts through map_location; pass dtype={map_location} to load"
        )
        raise TypeError(msg)
    if isinstance(map_location, dict) or callable(map_location):
        kind = "dict" if isinstance(map_location, dict) else "function"
        msg = (
            f"map_location takes one device ('cpu', 'cuda:0', a torch.device), not "
            f"a torch.load-style {kind}: ckptkit files do not record where each "
            "tensor lived; load onto one device, then move tensors yourself"
        )
        raise TypeError(msg)
    if not isinstance(map_location, (str, torch.device)):
        msg = (
            "map_location takes a device ('cpu', 'cuda:0', a torch.device), not "
            f"{type(map_location).__name__} ({map_location!r})"
        )
        raise TypeError(msg)
    try:
        device = torch.device(map_location)
        torch.empty(0, device=device)  # an unusable device fails here, not mid-load
    except (RuntimeError, AssertionError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        msg = (
            f"map_location={map_location!r} is not a device this machine can use "
            f"({reason}); pass e.g. 'cpu', 'cuda' or 'cuda:0'"
        )
        raise ValueError(msg) from error
    return device


def check_dtype(dtype: Any) -> torch.dtype | None:
    """The floating-point dtype to cast floating-point tensors to, or None.

    Raises:
        TypeError: Not a ``torch.dtype``.
        ValueError: Not a floating-point dtype.
    """
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        msg = f"dtype takes a torch.dtype (torch.float16), not {dtype!r}"
        raise TypeError(msg)
    if not dtype.is_floating_point:
        msg = (
            f"dtype={dtype} is not a floating-point dtype; load casts only "
            "floating-point tensors (integer tensors such as step counts keep theirs)"
        )
        raise ValueError(msg)
    return dtype
