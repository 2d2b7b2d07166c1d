"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

# Every dtype ckptkit stores; float8 variants included.
TENSOR_DTYPES = [
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.uint16,
    torch.int32,
    torch.uint32,
    torch.int64,
    torch.uint64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
    torch.float8_e4m3fnuz,
    torch.float8_e5m2fnuz,
    torch.float8_e8m0fnu,
]

shapes = st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=3)


@st.composite
def tensors(draw: st.DrawFn) -> torch.Tensor:
    """Small tensors of any dtype and shape with arbitrary bit patterns (nan too)."""
    dtype = draw(st.sampled_from(TENSOR_DTYPES))
    shape = draw(shapes)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    count = math.prod(shape)
    raw = draw(st.binary(min_size=count * itemsize, max_size=count * itemsize))
    if dtype is torch.bool:
        raw = bytes(b & 1 for b in raw)
    flat = (
        torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        if raw
        else torch.empty(0, dtype=torch.uint8)
    )
    tensor = (
        flat.view(dtype).reshape(shape) if count else torch.empty(shape, dtype=dtype)
    )
    if draw(st.booleans()) and tensor.dim() >= 2:
        tensor = tensor.transpose(0, 1)  # non-contiguous
    return tensor


def _leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.binary(max_size=8),
        tensors(),
        st.sampled_from([torch.float32, torch.bfloat16, torch.int64]),
        st.lists(st.integers(0, 5), max_size=3).map(torch.Size),
        st.lists(st.floats(allow_nan=True), max_size=4).map(
            lambda v: np.asarray(v, dtype=np.float64)
        ),
    )


dict_keys = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-5, max_value=10**12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)


def states(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Nested dict / OrderedDict / list / tuple trees of every supported leaf."""
    return st.recursive(
        _leaves(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(dict_keys, children, max_size=4),
            st.dictionaries(dict_keys, children, max_size=4).map(OrderedDict),
        ),
        max_leaves=max_leaves,
    )


def assert_same_state(actual: Any, expected: Any, path: str = "state") -> None:
    """Exact equality: types, key order, tuple vs list, tensor dtype/shape/bits."""
    assert type(actual) is type(expected) or (
        isinstance(expected, torch.Tensor) and type(actual) is torch.Tensor
    ), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(actual.keys()) == list(expected.keys()), path
        for key in expected:
            assert_same_state(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)) and not isinstance(expected, torch.Size):
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_state(a, e, f"{path}[{index}]")
    elif isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype, path
        assert actual.shape == expected.shape, path
        assert _bits(actual) == _bits(expected), path
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, path
        assert actual.tobytes() == expected.tobytes(), path
    elif isinstance(expected, float):
        assert float.hex(actual) == float.hex(expected), path
    else:
        assert actual == expected, path


def _bits(tensor: torch.Tensor) -> bytes:
    if tensor.numel() == 0:
        return b""
    resolved = tensor.detach().resolve_conj().resolve_neg()
    contiguous = resolved.clone(memory_format=torch.contiguous_format)
    return bytes(contiguous.reshape(-1).view(torch.uint8).numpy().tobytes())
