"""Nested state <-> JSON skeleton plus a flat list of tensors. No pickle.

Every node of the skeleton is plain JSON: ``null``, ``true``/``false`` and strings
stand for themselves; every other value is a one-key object naming its type
(``{"int": "12"}``, ``{"float": "0x1.8p+1"}``, ``{"list": [...]}``, ``{"dict":
[[key, value], ...]}``, ``{"tensor": leaf_index}``, ...). Only exact types are
accepted, so nothing changes type on the way back; anything else is a
``SerializationError`` naming its place in the state.
"""

from __future__ import annotations

import base64
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.format import SAFETENSORS_DTYPES
from ckptkit.errors import SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

JsonNode = Any  # a JSON value as described in the module docstring

_STORAGE_ALIGNMENT = 16  # the largest itemsize (complex128): views stay aligned


@dataclass
class Entry:
    """One tensor of the safetensors container."""

    name: str
    tensor: torch.Tensor  # what gets written: contiguous once materialised
    dtype: str  # torch dtype name of the stored bytes
    shape: list[int]

    @property
    def nbytes(self) -> int:
        """Size of the stored bytes."""
        return self.tensor.numel() * self.tensor.element_size()


@dataclass
class Encoded:
    """A state split into its JSON skeleton, tensor leaves and container entries."""

    tree: JsonNode
    leaves: list[dict[str, Any]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


def _numpy() -> Any:
    return sys.modules.get("numpy")


def path_text(path: tuple[object, ...]) -> str:
    """How error messages name a place in the state: ``state['model'][0]``."""
    return "state" + "".join(f"[{part!r}]" for part in path)


def _entry_name(path: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in path) or "state"


class Encoder:
    """Splits a state into a JSON tree, leaf records and tensor entries.

    One encoder per state (``encode_state``); ``ckptkit.distributed`` subclasses
    it to encode sharded tensors and migrated trees the same way.
    """

    def __init__(self) -> None:
        self.result = Encoded(tree=None)
        self._leaf_by_id: dict[int, int] = {}
        self._names: set[str] = set()
        # storage key -> (path, tensor) of every non-empty tensor leaf on it
        self._storage_groups: dict[
            tuple[str, int], list[tuple[tuple[object, ...], torch.Tensor]]
        ] = {}
        self._keepalive: list[object] = []

    def encode(self, value: Any, path: tuple[object, ...]) -> JsonNode:  # noqa: PLR0911
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            return {"int": str(value)}
        if kind is float:
            return {"float": float.hex(value)}  # exact, nan/inf/-0.0 included
        if kind is bytes:
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if kind is list or kind is tuple:
            items = [self.encode(v, (*path, i)) for i, v in enumerate(value)]
            return {kind.__name__: items}
        if kind is dict or kind is OrderedDict:
            pairs = [
                [self._encode_key(key, path), self.encode(item, (*path, key))]
                for key, item in value.items()
            ]
            return {"odict" if kind is OrderedDict else "dict": pairs}
        if kind is torch.Size:
            return {"size": list(value)}
        if kind is torch.dtype:
            return {"dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.Tensor):
            return {"tensor": self._tensor_leaf(value, path, "tensor")}
        return self._encode_numpy(value, path)

    def _encode_key(self, key: object, path: tuple[object, ...]) -> JsonNode:
        if key is None or type(key) in (bool, str, int, float):
            return self.encode(key, path)
        msg = (
            f"{path_text(path)} has a key of type {type(key).__name__} ({key!r}); "
            "keys must be str, int, float, bool or None"
        )
        raise SerializationError(msg)

    def _encode_numpy(self, value: Any, path: tuple[object, ...]) -> JsonNode:
        np = _numpy()
        if np is not None and type(value) is np.ndarray:
            return {"ndarray": self._numpy_leaf(value, path)}
        if np is not None and isinstance(value, np.generic):
            return {"npscalar": self._numpy_leaf(np.asarray(value), path)}
        kind = type(value)
        msg = (
            f"{path_text(path)} is of type {kind.__module__}.{kind.__qualname__}, "
            "which ckptkit does not store (supported: dict, OrderedDict, list, tuple, "
            "None, bool, int, float, str, bytes, torch.Tensor, torch.dtype, "
            "torch.Size, "
            "numpy arrays and scalars)"
        )
        raise SerializationError(msg)

    def _numpy_leaf(self, array: np.ndarray[Any, Any], path: tuple[object, ...]) -> int:
        if (
            array.dtype.hasobject
            or array.dtype.byteorder == ">"
            or array.dtype.kind in "USVOMm"
        ):
            msg = (
                f"{path_text(path)} is a numpy array of dtype {array.dtype}, "
                "which ckptkit does not store"
            )
            raise SerializationError(msg)
        contiguous = array if array.flags.c_contiguous else array.copy()
        self._keepalive.append(contiguous)
        tensor = torch.from_numpy(contiguous)
        return self._tensor_leaf(tensor, path, "ndarray", key_id=id(array))

    def _tensor_leaf(
        self,
        tensor: torch.Tensor,
        path: tuple[object, ...],
        kind: str,
        key_id: int | None = None,
    ) -> int:
        key_id = id(tensor) if key_id is None else key_id
        if key_id in self._leaf_by_id:
            return self._leaf_by_id[key_id]
        if (
            tensor.layout is not torch.strided
            or tensor.is_quantized
            or tensor.device.type == "meta"
        ):
            msg = (
                f"{path_text(path)} is a {tensor.layout} / quantized / meta tensor; "
                "only dense tensors are stored"
            )
            raise SerializationError(msg)
        dtype_name = str(tensor.dtype).removeprefix("torch.")
        if (
            dtype_name not in SAFETENSORS_DTYPES
            and tensor.dtype is not torch.complex128
        ):
            msg = (
                f"{path_text(path)} has dtype {tensor.dtype}, "
                "which ckptkit does not store"
            )
            raise SerializationError(msg)
        leaf_index = len(self.result.leaves)
        self._leaf_by_id[key_id] = leaf_index
        self.result.leaves.append({"kind": kind, "path": path})
        self._keepalive.append(tensor)
        if tensor.numel() == 0:
            self._plain_entry(leaf_index, tensor, path)
        else:
            storage_key = (str(tensor.device), tensor.untyped_storage().data_ptr())
            self._storage_groups.setdefault(storage_key, []).append((path, tensor))
            self.result.leaves[leaf_index]["pending"] = storage_key
        return leaf_index

    def _unique_name(self, path: tuple[object, ...]) -> str:
        base = _entry_name(path)
        name, counter = base, 1
        while name in self._names or name == "__metadata__":
            name, counter = f"{base}~{counter}", counter + 1
        self._names.add(name)
        return name

    def _plain_entry(
        self, leaf_index: int, tensor: torch.Tensor, path: tuple[object, ...]
    ) -> int:
        source = tensor.detach().resolve_conj().resolve_neg()
        if source.dtype is torch.complex128:
            source = torch.view_as_real(source)
            self.result.leaves[leaf_index]["complex128"] = True
        entry = Entry(
            name=self._unique_name(path),
            tensor=source,
            dtype=str(source.dtype).removeprefix("torch."),
            shape=list(source.shape),
        )
        self.result.entries.append(entry)
        self.result.leaves[leaf_index]["entry"] = entry.name
        return len(self.result.entries) - 1

    def finish(self) -> Encoded:
        """Decide how each storage group is stored, once every leaf is known."""
        leaves_by_storage: dict[tuple[str, int], list[int]] = {}
        for index, leaf in enumerate(self.result.leaves):
            key = leaf.pop("pending", None)
            if key is not None:
                leaves_by_storage.setdefault(key, []).append(index)
        for key, leaf_indices in leaves_by_storage.items():
            group = self._storage_groups[key]
            members = [tensor for _, tensor in group]
            geometries = {
                (m.dtype, m.storage_offset(), tuple(m.shape), tuple(m.stride()))
                for m in members
            }
            if len(geometries) == 1:
                # The same view (or the same tensor) several times: stored once.
                first = leaf_indices[0]
                self._plain_entry(first, members[0], group[0][0])
                shared = {
                    k: v for k, v in self.result.leaves[first].items() if k != "path"
                }
                for other in leaf_indices[1:]:
                    self.result.leaves[other].update(shared)
            else:
                self._blob_entry(leaf_indices, members, group[0][0])
        for leaf in self.result.leaves:
            leaf.pop("path", None)
        return self.result

    def _blob_entry(
        self,
        leaf_indices: list[int],
        members: list[torch.Tensor],
        first_path: tuple[object, ...],
    ) -> None:
        """Store the bytes spanned by several different views of one storage once."""
        spans = [_byte_span(m) for m in members]
        storage = members[0].untyped_storage()
        align = _STORAGE_ALIGNMENT
        low = min(s[0] for s in spans) // align * align
        high = min(storage.nbytes(), -(-max(s[1] for s in spans) // align) * align)
        blob = torch.empty(0, dtype=torch.uint8, device=members[0].device)
        blob.set_(storage, low, (high - low,), (1,))
        entry = Entry(
            name=self._unique_name(first_path),
            tensor=blob,
            dtype="uint8",
            shape=[high - low],
        )
        self.result.entries.append(entry)
        for leaf_index, member in zip(leaf_indices, members, strict=True):
            offset_bytes = member.storage_offset() * member.element_size() - low
            self.result.leaves[leaf_index].update(
                {
                    "entry": entry.name,
                    "view": {
                        "dtype": str(member.dtype).removeprefix("torch."),
                        "shape": list(member.shape),
                        "stride": list(member.stride()),
                        "offset": offset_bytes // member.element_size(),
                    },
                }
            )


def _byte_span(tensor: torch.Tensor) -> tuple[int, int]:
    size = tensor.element_size()
    start = int(tensor.storage_offset()) * size
    last = tensor.storage_offset() + sum(
        (n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True)
    )
    return start, int(last + 1) * size  # SymInt-free on real tensors


def encode_state(state: object) -> Encoded:
    """Split ``state`` into a JSON skeleton, tensor leaves and container entries.

    Raises:
        SerializationError: A leaf or key of an unsupported type (the message names
            its path inside the state).
    """
    encoder = Encoder()
    encoder.result.tree = encoder.encode(state, ())
    return encoder.finish()


def decode_tree(node: JsonNode, leaf: Callable[[str, int], object]) -> object:  # noqa: C901, PLR0911
    """Rebuild the state from its skeleton; ``leaf(kind, index)`` supplies tensors.

    Raises:
        ValueError: The skeleton is malformed.
    """
    if node is None or isinstance(node, (bool, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        msg = f"malformed state node {str(node)[:80]}"
        raise ValueError(msg)
    ((kind, body),) = node.items()
    if kind == "int":
        return int(body)
    if kind == "float":
        return float.fromhex(body)
    if kind == "bytes":
        return base64.b64decode(body, validate=True)
    if kind == "list":
        return [decode_tree(item, leaf) for item in body]
    if kind == "tuple":
        return tuple(decode_tree(item, leaf) for item in body)
    if kind in ("dict", "odict"):
        pairs = ((decode_tree(k, leaf), decode_tree(v, leaf)) for k, v in body)
        return OrderedDict(pairs) if kind == "odict" else dict(pairs)
    if kind == "size":
        return torch.Size(int(n) for n in body)
    if kind == "dtype":
        dtype = getattr(torch, body, None)
        if not isinstance(dtype, torch.dtype):
            msg = f"unknown dtype {body!r}"
            raise ValueError(msg)
        return dtype
    if kind in ("tensor", "ndarray", "npscalar"):
        return leaf(kind, int(body))
    msg = f"unknown state node type {kind!r}"
    raise ValueError(msg)
