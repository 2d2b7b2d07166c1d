"""Mutations of checkpoint files: by structure (resealed) and by bytes.

Structure mutations parse a ckptkit file's two JSON layers (the safetensors
header and the ckptkit header inside its ``__metadata__``), change one value,
key or entry, and write the file back with its checksums recomputed: what a
buggy or hostile writer could produce, which no checksum catches. Byte
mutations flip bits, truncate, insert or overwrite, and leave checksums alone:
what a bad disk does.
"""

from __future__ import annotations

import copy
import json
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from ckptkit._file.digest import digest, header_checksum_span, header_digest
from ckptkit._file.format import KEY_HEADER, METADATA_KEY

#: A placeholder :meth:`Layers.seal` replaces with deep nesting.
DEEP = "@@deep@@"

#: Values a hostile writer puts where a number, string or list belongs.
HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [-1, 0, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63)]
    ),
    st.sampled_from([1.5, -0.0, 1e308, 2.0**70]),
    st.sampled_from(["", "x", "F32", "float64", "nn", "load", "0" * 5000, "9" * 5000]),
    st.sampled_from([None, True, False, [], {}, [0] * 3, [2**62, 2**62], {"a": 1}]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
DTYPE_NAMES = st.sampled_from(
    [
        *("F32", "F64", "F16", "BF16", "U8", "I64", "BOOL", "C64", "F8_E8M0"),
        *("float32", "complex128", "int64", "bool", "uint8", "nn", "load", "Tensor"),
    ]
)


@dataclass
class Layers:
    """A ckptkit file taken apart: both JSON layers and the tensor bytes."""

    top: dict[str, Any]
    inner: dict[str, Any]
    data: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Layers:
        (length,) = struct.unpack("<Q", raw[:8])
        top = json.loads(raw[8 : 8 + length])
        inner = json.loads(top[METADATA_KEY][KEY_HEADER])
        return cls(top, inner, raw[8 + length :])

    def seal(
        self, *, deep: int = 0, fill: str = "", reseal_tensors: bool = True
    ) -> bytes:
        """The file, checksums recomputed.

        Where a value is ``DEEP``, ``deep`` levels of nested lists go in (or
        the JSON text ``fill``), as text: too deep for ``json.dumps``.
        """
        top = copy.deepcopy(self.top)
        inner = copy.deepcopy(self.inner)
        if reseal_tensors:
            _reseal_tensors(top, inner, self.data)
        text = json.dumps(inner, separators=(",", ":"))
        if deep or fill:
            text = text.replace(json.dumps(DEEP), fill or "[" * deep + "]" * deep, 1)
        if isinstance(top.get(METADATA_KEY), dict):
            top[METADATA_KEY][KEY_HEADER] = text
        raw = json.dumps(top, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        region = struct.pack("<Q", len(raw)) + raw
        span = header_checksum_span(region)
        if span is not None:
            value = header_digest(region, span).encode()
            region = region[: span[0]] + value + region[span[1] :]
        return region + self.data


def _reseal_tensors(top: dict[str, Any], inner: dict[str, Any], data: bytes) -> None:
    checksums = inner.get("checksums")
    if not isinstance(checksums, dict):
        return
    for name, spec in top.items():
        try:
            begin, end = spec["data_offsets"]
            if name in checksums and 0 <= begin <= end <= len(data):
                checksums[name] = digest(data[begin:end])
        except (TypeError, KeyError, ValueError):
            continue


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (containers and leaves)."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_places(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_places(value, (*path, index)))
    return found


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


@st.composite
def structure_mutation(draw: st.DrawFn, seed: bytes) -> bytes:
    """A ckptkit file with one structural change, checksums recomputed."""
    layers = Layers.parse(seed)
    layer = draw(st.sampled_from(["top", "inner"]))
    root = layers.top if layer == "top" else layers.inner
    places = [p for p in _places(root) if p]
    path = draw(st.sampled_from(places))
    parent, key = _parent(root, path), path[-1]
    action = draw(
        st.sampled_from(["replace", "deepen", "drop", "duplicate", "nudge", "dtype"])
    )
    deep = 0
    if action == "replace":
        parent[key] = draw(HOSTILE_VALUES)
    elif action == "deepen" and layer == "inner":
        parent[key] = DEEP
        deep = draw(st.sampled_from([10, 400, 990, 5_000, 200_000]))
    elif action == "drop":
        del parent[key]
    elif action == "duplicate":
        if isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(parent[key]))
        else:
            parent[f"{key}~copy"] = copy.deepcopy(parent[key])
    elif action == "nudge" and type(parent[key]) is int:
        parent[key] = draw(
            st.sampled_from(
                [parent[key] + 1, parent[key] - 1, -parent[key], parent[key] << 40]
            )
        )
    elif action == "dtype":
        parent[key] = draw(DTYPE_NAMES)
    else:
        parent[key] = draw(HOSTILE_VALUES)
    return layers.seal(deep=deep, reseal_tensors=draw(st.booleans()))


@st.composite
def byte_mutation(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with flipped bits, a cut, an insertion or an overwrite."""
    data = bytearray(seed)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif kind == "insert":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=16))
    else:
        position = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=32))
        data[position : position + len(chunk)] = chunk
    return bytes(data)
