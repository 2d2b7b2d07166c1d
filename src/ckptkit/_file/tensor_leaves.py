"""The tensor leaves of a state: what is stored once, and how each leaf comes back.

Every tensor, numpy array, numpy scalar and ``torch.Generator`` of a state is a
*leaf*: one row of the leaf table (docs/ckptkit/format.md, "The leaf table")
pointing at a container entry. The same object several times is one leaf;
different views of one storage share one entry, so they come back sharing memory.
Whatever cannot come back exactly is refused here, with what to store instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.format import SAFETENSORS_DTYPES, SKELETON_ENTRY

if TYPE_CHECKING:
    import numpy as np

_STORAGE_ALIGNMENT = 16  # the largest itemsize (complex128): views stay aligned
_DENSE_TYPES = (torch.Tensor, torch.nn.Parameter)


@dataclass
class Entry:
    """One tensor of the safetensors container."""

    name: str
    tensor: torch.Tensor  # what gets written: contiguous once materialised
    dtype: str  # torch dtype name of the stored bytes
    shape: list[int]

    @property
    def nbytes(self) -> int:
        return self.tensor.numel() * self.tensor.element_size()


_PATH_PARTS_SHOWN = 12


def path_text(path: tuple[object, ...]) -> str:
    """A state path as Python would index it: ``state['optim'][0]``.

    A very deep path shows its first and last parts around ``...``.
    """
    parts = [f"[{part!r}]" for part in path]
    if len(parts) > _PATH_PARTS_SHOWN:
        half = _PATH_PARTS_SHOWN // 2
        parts = [*parts[:half], f"...({len(path) - 2 * half} more)...", *parts[-half:]]
    return "state" + "".join(parts)


def unique_entry_name(path: tuple[object, ...], taken: set[str]) -> str:
    """The dotted path of ``path``, made unique among ``taken`` (and added to it).

    ``__metadata__`` is safetensors' own key: never an entry's name.
    """
    base = ".".join(str(part) for part in path) or "state"
    name, counter = base, 1
    while name in taken or name == "__metadata__":
        name, counter = f"{base}~{counter}", counter + 1
    taken.add(name)
    return name


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _tensor_refusal(tensor: torch.Tensor) -> str | None:  # noqa: PLR0911
    """Why ``tensor`` cannot be stored exactly, with what to store instead."""
    kind = type(tensor)
    if tensor.is_nested:
        return "is a nested tensor; store value.unbind() (a list of tensors)"
    if kind not in _DENSE_TYPES:
        return (
            f"is a tensor subclass ({kind.__module__}.{kind.__qualname__}); store "
            "value.as_subclass(torch.Tensor) and rebuild the subclass after "
            "loading, or register it with ckptkit.register_leaf_type"
        )
    if tensor.layout is not torch.strided:
        return (
            f"is a {tensor.layout} tensor; store value.to_dense(), or its "
            "indices and values"
        )
    if tensor.is_quantized:
        return (
            "is a quantized tensor; store value.dequantize(), or value.int_repr() "
            "with its scale and zero point"
        )
    if tensor.device.type == "meta":
        return "is a meta tensor, which holds no data; store its shape and dtype"
    name = _dtype_name(tensor.dtype)
    if name not in SAFETENSORS_DTYPES and tensor.dtype is not torch.complex128:
        return (
            f"has dtype {tensor.dtype}, which ckptkit does not store; convert it "
            "with value.to(...) or keep its bytes with value.view(torch.uint8)"
        )
    return None


def _numpy_refusal(array: np.ndarray[Any, Any]) -> str | None:
    if array.dtype.hasobject or array.dtype.kind in "USVOMm":
        return (
            f"is a numpy array of dtype {array.dtype}, which ckptkit does not "
            "store; store value.tolist() or a numeric array"
        )
    if array.dtype.byteorder == ">":
        return (
            f"is a big-endian numpy array ({array.dtype}); store "
            "value.astype(value.dtype.newbyteorder('='))"
        )
    return None


def byte_span(tensor: torch.Tensor) -> tuple[int, int]:
    """Bytes ``[start, end)`` of the storage that ``tensor``'s elements occupy."""
    size = tensor.element_size()
    start = int(tensor.storage_offset()) * size
    last = tensor.storage_offset() + sum(
        (n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True)
    )
    return start, int(last + 1) * size


def _geometry(tensor: torch.Tensor) -> tuple[object, ...]:
    """What makes two tensors on one storage the same view, bits included."""
    shape, stride = tuple(tensor.shape), tuple(tensor.stride())
    offset = tensor.storage_offset()
    return (tensor.dtype, offset, shape, stride, tensor.is_conj(), tensor.is_neg())


def _overlaps_itself(tensor: torch.Tensor) -> bool:
    """Whether elements share memory (an expand): copying would multiply it."""
    start, end = byte_span(tensor)
    return end - start < tensor.numel() * tensor.element_size()


#: ``(device, start address, end address, leaf, owner)``: memory a leaf covers.
MemorySpan = tuple[str, int, int, int, object]


def foreign_overlap(spans: list[MemorySpan]) -> tuple[int, int] | None:
    """Two leaves whose memory overlaps with different owners, if any.

    The owner is the torch storage a tensor starts (views of one storage share
    it) or, for a numpy value, the value itself: only views of one storage can
    come back sharing memory.
    """
    active: list[MemorySpan] = []
    for span in sorted(spans, key=lambda span: span[:3]):
        device, low = span[0], span[1]
        active = [a for a in active if a[0] == device and a[2] > low]
        for other in active:
            if other[4] != span[4]:
                return other[3], span[3]
        active.append(span)
    return None


def numpy_bounds(array: np.ndarray[Any, Any]) -> tuple[int, int]:
    numpy = sys.modules["numpy"]
    utils = getattr(numpy.lib, "array_utils", numpy)  # numpy >= 2 moved it
    low, high = utils.byte_bounds(array)
    return int(low), int(high)


class TensorLeaves:
    """Collects a state's leaves, then decides how their bytes are stored."""

    def __init__(self) -> None:
        self.leaves: list[dict[str, Any]] = []
        self.entries: list[Entry] = []
        self._names: set[str] = {SKELETON_ENTRY}
        self._paths: list[tuple[object, ...]] = []
        self._tensors: list[torch.Tensor] = []
        # (memory start, end, leaf) of every numpy leaf: they must not overlap others
        self._numpy_spans: list[tuple[int, int, int]] = []
        self._keepalive: list[object] = []

    def add_tensor(self, tensor: torch.Tensor, path: tuple[object, ...]) -> int:
        """Add a tensor (or ``nn.Parameter``) leaf.

        Raises:
            TypeError: A tensor that cannot be stored exactly (says what to store).
        """
        reason = _tensor_refusal(tensor)
        if reason is not None:
            raise TypeError(reason)
        if type(tensor) is torch.nn.Parameter:
            leaf = {"kind": "parameter", "requires_grad": tensor.requires_grad}
        else:
            leaf = {"kind": "tensor"}
        return self._add(tensor, path, leaf)

    def add_numpy(self, value: Any, path: tuple[object, ...]) -> int:
        """Add a numpy array or scalar leaf (stored C-contiguous).

        Raises:
            TypeError: A dtype ckptkit does not store.
        """
        numpy = sys.modules["numpy"]
        scalar = type(value) is not numpy.ndarray
        array = numpy.asarray(value) if scalar else value
        reason = _numpy_refusal(array)
        if reason is not None:
            raise TypeError(reason)
        # numpy calls any array of at most one element contiguous, whatever its
        # strides (negative ones included, which torch refuses): copy those too.
        contiguous = (
            array if array.flags.c_contiguous and array.size > 1 else array.copy()
        )
        self._keepalive.append(contiguous)
        kind = "npscalar" if scalar else "ndarray"
        index = self._add(torch.from_numpy(contiguous), path, {"kind": kind})
        # A scalar's array is a fresh copy, freed on return: its address may be
        # the next scalar's, and it shares memory with nothing the caller holds.
        if array.size and not scalar:
            self._numpy_spans.append((*numpy_bounds(array), index))
        return index

    def add_generator(
        self, generator: torch.Generator, path: tuple[object, ...]
    ) -> int:
        """Add a ``torch.Generator``: its state bytes and its device."""
        leaf = {"kind": "generator", "device": str(generator.device)}
        return self._add(generator.get_state(), path, leaf)

    def _add(
        self, tensor: torch.Tensor, path: tuple[object, ...], leaf: dict[str, Any]
    ) -> int:
        index = len(self.leaves)
        self.leaves.append(leaf)
        self._paths.append(path)
        self._tensors.append(tensor)
        self._keepalive.append(tensor)
        return index

    def finish(self) -> tuple[list[dict[str, Any]], list[Entry]]:
        """Decide how each storage is stored, once every leaf is known.

        Raises:
            TypeError: Leaves share memory in a way ckptkit cannot rebuild.
        """
        groups: dict[tuple[str, int], list[int]] = {}
        for index, tensor in enumerate(self._tensors):
            if tensor.numel() == 0:
                self._plain_entry([index])
                continue
            key = (str(tensor.device), tensor.untyped_storage().data_ptr())
            groups.setdefault(key, []).append(index)
        self._refuse_foreign_sharing(groups)
        for indices in groups.values():
            members = [self._tensors[i] for i in indices]
            geometries = {_geometry(m) for m in members}
            if len(geometries) == 1 and not _overlaps_itself(members[0]):
                # The same view (or the same tensor) several times: stored once.
                self._plain_entry(indices)
            else:
                self._blob_entry(indices)
        return self.leaves, self.entries

    def _refuse_foreign_sharing(self, groups: dict[tuple[str, int], list[int]]) -> None:
        """Refuse memory shared other than as views of one torch storage.

        A numpy value that may overlap another leaf, or tensors over overlapping
        memory that do not start one storage (``torch.from_numpy`` of two views
        of one array), cannot come back sharing it: refused, never split.
        """
        numpy_leaves = {index for _, _, index in self._numpy_spans}
        spans: list[MemorySpan] = [
            ("cpu", low, high, index, ("numpy", index))
            for low, high, index in self._numpy_spans
        ]
        for key, indices in groups.items():
            for index in indices:
                if index not in numpy_leaves:
                    start, end = byte_span(self._tensors[index])
                    spans.append((key[0], key[1] + start, key[1] + end, index, key))
        pair = foreign_overlap(spans)
        if pair is not None:
            self._shared_memory_error(pair[0], pair[1], numpy_leaves)

    def _shared_memory_error(
        self, first: int, second: int, numpy_leaves: set[int]
    ) -> None:
        names = f"{path_text(self._paths[first])} and {path_text(self._paths[second])}"
        if first in numpy_leaves or second in numpy_leaves:
            msg = (
                f"{names} share memory, which ckptkit keeps only between torch "
                "tensors; store one of them, a copy (value.copy()), or torch tensors"
            )
        else:
            msg = (
                f"{names} share memory without sharing a torch storage (tensors "
                "made by torch.from_numpy of views of one array?); store "
                "torch.from_numpy(base) and views of that tensor, or a copy "
                "(value.clone())"
            )
        raise TypeError(msg)

    def _plain_entry(self, indices: list[int]) -> None:
        """Store one tensor's values contiguously; every leaf in ``indices`` uses it."""
        first = self._tensors[indices[0]]
        source = first.detach().resolve_conj().resolve_neg()
        if source.numel() == 1:
            # One element counts as contiguous whatever its stride (a step slice
            # of length 1): give it the stride a flat byte view needs.
            source = source.clone(memory_format=torch.contiguous_format)
        shared: dict[str, Any] = {}
        if source.dtype is torch.complex128:
            source = torch.view_as_real(source)
            shared["complex128"] = True
        shared["entry"] = self._add_entry(indices[0], source)
        for index in indices:
            self.leaves[index].update(shared)

    def _blob_entry(self, indices: list[int]) -> None:
        """Store the bytes that several views of one storage span, once."""
        members = [self._tensors[i] for i in indices]
        spans = [byte_span(m) for m in members]
        # Tensors over the same memory may hold different storages of different
        # sizes (torch.from_numpy of two views): the largest covers the others.
        storage = max(
            (m.untyped_storage() for m in members), key=lambda st: st.nbytes()
        )
        align = _STORAGE_ALIGNMENT
        low = min(s[0] for s in spans) // align * align
        high = min(storage.nbytes(), -(-max(s[1] for s in spans) // align) * align)
        blob = torch.empty(0, dtype=torch.uint8, device=members[0].device)
        blob.set_(storage, low, (high - low,), (1,))
        name = self._add_entry(indices[0], blob)
        for index, member in zip(indices, members, strict=True):
            offset_bytes = member.storage_offset() * member.element_size() - low
            view: dict[str, Any] = {
                "dtype": _dtype_name(member.dtype),
                "shape": list(member.shape),
                "stride": list(member.stride()),
                "offset": offset_bytes // member.element_size(),
            }
            # The blob holds raw memory: a conjugate or negative view keeps its bit.
            if member.is_conj():
                view["conj"] = True
            if member.is_neg():
                view["neg"] = True
            self.leaves[index].update({"entry": name, "view": view})

    def _add_entry(self, leaf: int, tensor: torch.Tensor) -> str:
        """Store ``tensor`` as an entry named after ``leaf``'s path; return the name."""
        name = unique_entry_name(self._paths[leaf], self._names)
        dtype, shape = _dtype_name(tensor.dtype), list(tensor.shape)
        self.entries.append(Entry(name, tensor, dtype, shape))
        return name
