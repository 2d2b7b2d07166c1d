"""The copy an asynchronous save must take before ``save`` returns, and no more.

The caller may change its state as soon as ``save`` returns: its containers
(lists, dicts, tuples) and its tensors' bytes. :func:`freeze_state` copies exactly
those: a new container for each container, the same object for each immutable
leaf (numbers, strings, bytes, dtypes, sizes, numpy scalars), and for tensors and
numpy arrays, their bytes into the host buffer. Encoding the copy (building the
JSON tree, deciding entries) then runs on the background thread, so a state with
a long metrics history blocks the loop for a walk over it, not for its encoding.

The copy must encode to the file a synchronous save writes, byte for byte. So
the tensor copies keep every fact the codec reads: dtype, shape, strides, which
leaves are the same object, and which share a storage (the codec groups them by
storage and, for different views of one storage, stores the span they cover, up
to the storage's end). Each storage group is copied as that span, into a window
of the buffer that is a storage of its own, and its members become views of it
at the same relative offsets.

Anything else (a tensor subclass, a conjugate or negative view, a sparse tensor,
another leaf type, an unusual key) raises :class:`NotFrozenError`: the manager
then encodes the state at once, as it did before, and the codec judges it.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.format import SAFETENSORS_DTYPES
from ckptkit._file.tensor_leaves import (
    MemorySpan,
    byte_span,
    foreign_overlap,
    numpy_bounds,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

_STORAGE_ALIGNMENT = 16  # the codec's (codec._STORAGE_ALIGNMENT): spans round to it
_TENSOR_DTYPES = frozenset(
    getattr(torch, name) for name in (*SAFETENSORS_DTYPES, "complex128")
)
_NUMPY_DTYPES = frozenset(
    (
        *("bool", "int8", "int16", "int32", "int64"),
        *("uint8", "uint16", "uint32", "uint64"),
        *("float16", "float32", "float64", "complex64", "complex128"),
    )
)
_ATOMS: frozenset[type] = frozenset(
    {type(None), bool, int, float, str, bytes, torch.dtype, torch.Size}
)
_KEYS: frozenset[type] = frozenset({type(None), bool, int, float, str})


class NotFrozenError(Exception):
    """The state holds something only the codec may judge: encode it at once."""


@dataclass
class StorageGroup:
    """Tensors sharing one storage, and the byte span of it they reach."""

    storage: torch.UntypedStorage
    low: int  # aligned down, as the codec aligns the span it stores
    high: int
    members: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.high - self.low


def _numpy_atoms() -> frozenset[type]:
    np = sys.modules.get("numpy")
    if np is None:
        return frozenset()
    return frozenset(type(np.zeros((), dtype=name)[()]) for name in _NUMPY_DTYPES)


class _ArraySlot:
    """Where a numpy array's copy goes once its bytes are in the buffer."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor  # the placeholder of its bytes
        self._array: object = None

    def array(self) -> object:
        """The copy, one object however often the array appears (as the source)."""
        if self._array is None:
            self._array = self.tensor.numpy()
        return self._array


@dataclass
class FrozenState:
    """A state's containers copied; its tensors' bytes still to copy (``place``)."""

    tree: object
    groups: list[StorageGroup]
    empty: list[tuple[torch.Tensor, torch.Tensor]]
    has_arrays: bool
    keepalive: list[object]  # the sources, alive (and their addresses unique)


class _Freezer:
    """One walk over a state: containers copied, tensors collected by storage."""

    def __init__(self) -> None:
        self.atoms = _ATOMS | _numpy_atoms()
        self.groups: dict[tuple[str, int], StorageGroup] = {}
        self.empty: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.has_arrays = False
        # The memory every leaf covers: sharing the codec refuses is left to it.
        self.spans: list[MemorySpan] = []
        self._memo: dict[int, object] = {}
        self.keepalive: list[object] = []
        self._copiers: dict[type, Callable[[Any], Any]] = {
            list: self._list,
            dict: self._dict,
            OrderedDict: self._dict,
            tuple: self._tuple,
            torch.Tensor: lambda value: self._memoised(value, self._tensor),
        }
        np = sys.modules.get("numpy")
        if np is not None:
            self._copiers[np.ndarray] = lambda value: self._memoised(value, self._array)

    def freeze(self, value: Any) -> Any:
        kind = type(value)
        if kind in self.atoms:
            return value
        copier = self._copiers.get(kind)
        if copier is None:
            raise NotFrozenError
        return copier(value)

    # Containers of immutable leaves only (a metrics history's entries) are
    # copied whole: the type checks run in C (map), and so does the copy.

    def _list(self, value: list[Any]) -> list[Any]:
        atoms = self.atoms
        if atoms.issuperset(map(type, value)):
            return list(value)
        return [item if type(item) in atoms else self.freeze(item) for item in value]

    def _dict(self, value: dict[Any, Any]) -> dict[Any, Any]:
        if not _KEYS.issuperset(map(type, value)):
            raise NotFrozenError
        atoms, kind = self.atoms, type(value)
        if atoms.issuperset(map(type, value.values())):
            return kind(value)
        return kind(
            (key, item if type(item) in atoms else self.freeze(item))
            for key, item in value.items()
        )

    def _tuple(self, value: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.atoms.issuperset(map(type, value)):
            return value  # immutable, and so is everything in it
        return tuple(self.freeze(item) for item in value)

    def _memoised(self, value: Any, make: Callable[[Any], object]) -> object:
        # The codec stores one leaf per object (by id): so does the copy.
        frozen = self._memo.get(id(value))
        if frozen is None:
            frozen = make(value)
            self._memo[id(value)] = frozen
            self.keepalive.append(value)
        return frozen

    def _tensor(self, tensor: torch.Tensor, numpy_owner: object = None) -> torch.Tensor:
        if (
            tensor.layout is not torch.strided
            or tensor.is_quantized
            or tensor.device.type == "meta"
            or tensor.dtype not in _TENSOR_DTYPES
            or tensor.is_conj()
            or tensor.is_neg()
        ):
            raise NotFrozenError
        frozen = torch.empty(0, dtype=tensor.dtype)  # set into the buffer later
        if tensor.numel() == 0:
            self.empty.append((tensor, frozen))
            return frozen
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        low, high = byte_span(tensor)
        if numpy_owner is None:
            span = (key[0], key[1] + low, key[1] + high, len(self.spans), key)
            self.spans.append(span)
        group = self.groups.get(key)
        if group is None:
            # The codec bounds a span by the storage of the group's first member.
            group = StorageGroup(storage, low, high)
            self.groups[key] = group
        group.low, group.high = min(group.low, low), max(group.high, high)
        group.members.append((tensor, frozen))
        return frozen

    def _array(self, array: np.ndarray[Any, Any]) -> _ArraySlot:
        if array.dtype.name not in _NUMPY_DTYPES or not array.dtype.isnative:
            raise NotFrozenError
        # As the codec does: a C-contiguous array of several elements is taken
        # as it is, any other is copied first (so it shares nothing).
        contiguous = (
            array if array.flags.c_contiguous and array.size > 1 else array.copy()
        )
        self.keepalive.append(contiguous)
        self.has_arrays = True
        owner = ("numpy", id(array))
        if array.size:
            self.spans.append(("cpu", *numpy_bounds(array), len(self.spans), owner))
        return _ArraySlot(self._tensor(torch.from_numpy(contiguous), owner))

    def aligned_groups(self) -> list[StorageGroup]:
        """Each group's span aligned the way the codec aligns it (in its storage)."""
        align = _STORAGE_ALIGNMENT
        for group in self.groups.values():
            group.low = group.low // align * align
            high = -(-group.high // align) * align
            group.high = min(group.storage.nbytes(), high)
        return list(self.groups.values())


def freeze_tree(state: object) -> FrozenState:
    """Copy the containers of ``state``; collect its tensors by storage.

    The tensor leaves of the copy are empty placeholders until :func:`place`
    sets them into their copies, and numpy arrays are slots until
    :func:`fill_arrays` puts their copies in.

    Raises:
        NotFrozenError: Something only the codec may judge (see the module).
    """
    freezer = _Freezer()
    try:
        tree = freezer.freeze(state)
    except RecursionError:  # deeper than Python's stack: the codec decides
        raise NotFrozenError from None
    if foreign_overlap(freezer.spans) is not None:
        raise NotFrozenError  # memory shared other than by views: the codec refuses
    return FrozenState(
        tree,
        freezer.aligned_groups(),
        freezer.empty,
        freezer.has_arrays,
        freezer.keepalive,
    )


def place(group: StorageGroup, window: torch.Tensor) -> None:
    """Make each member's placeholder a view of ``window``, the group's copy.

    ``window`` is a uint8 tensor over a storage of its own holding the bytes
    ``[group.low, group.high)`` of the group's storage.
    """
    storage = window.untyped_storage()
    for source, frozen in group.members:
        offset_bytes = source.storage_offset() * source.element_size() - group.low
        frozen.set_(
            storage,
            offset_bytes // source.element_size(),
            source.shape,
            source.stride(),
        )


def place_empty(frozen: FrozenState) -> None:
    """Give each element-less placeholder its source's shape."""
    for source, placeholder in frozen.empty:
        placeholder.resize_(source.shape)


def fill_arrays(node: Any) -> Any:
    """Put each numpy array's copy where its slot is (once tensors are placed)."""
    kind = type(node)
    if kind is _ArraySlot:
        return node.array()
    if kind is list:
        for index, item in enumerate(node):
            node[index] = fill_arrays(item)
    elif kind is dict or kind is OrderedDict:
        for key, item in node.items():
            node[key] = fill_arrays(item)
    elif kind is tuple:
        return tuple(fill_arrays(item) for item in node)
    return node
