"""Issue 12 item 5: every aliasing pattern people hold comes back exactly, or is
refused at save time.

Generated states hold a few base tensors and tensors derived from them (slices
with offsets and steps, transposes, expands with zero strides, conjugate and
negative views, Parameters, the same object again) and numpy arrays with views
of them. The oracle: the same object comes back as one object; distinct tensors
that shared a storage share one again, with their shape, strides, offset and
conjugate/negative bits; every value is bit-exact; a numpy value whose memory
may overlap another leaf's is refused with ``SerializationError``.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit

from ..strategies import assert_same_state

_BASE_DTYPES = [torch.float32, torch.int64, torch.complex64, torch.bfloat16]


def _derive(base: torch.Tensor, how: int, draw: st.DrawFn) -> torch.Tensor:  # noqa: PLR0911
    flat = base.reshape(-1)
    if how == 0:
        return base
    if how == 1:
        start = draw(st.integers(0, flat.numel() - 1))
        step = draw(st.integers(1, 3))
        return flat[start::step]
    if how == 2:
        return base.t() if base.dim() == 2 else flat.unsqueeze(1).t()
    if how == 3:
        return flat[:1].expand(draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    if how == 4:
        return base.conj() if base.is_complex() else flat[1:]
    if how == 5:
        return base.conj().imag if base.is_complex() else -flat  # a neg view
    return torch.nn.Parameter(base.detach()[0], requires_grad=False)


@st.composite
def aliased_states(draw: st.DrawFn) -> dict[str, Any]:
    """A flat dict of tensors, many of them views of a few bases."""
    state: dict[str, Any] = {}
    for b in range(draw(st.integers(1, 2))):
        dtype = draw(st.sampled_from(_BASE_DTYPES))
        rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        values = draw(
            st.lists(st.integers(-50, 50), min_size=rows * cols, max_size=rows * cols)
        )
        base = torch.tensor(values).to(dtype).reshape(rows, cols)
        if dtype.is_complex:
            base = base * (1 - 2j)
        state[f"base{b}"] = base
        for d in range(draw(st.integers(0, 4))):
            state[f"b{b}_view{d}"] = _derive(base, draw(st.integers(0, 6)), draw)
    names = list(state)
    for t in range(draw(st.integers(0, 2))):
        state[f"tied{t}"] = state[draw(st.sampled_from(names))]
    return state


def _shares(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _check(original: dict[str, Any], loaded: dict[str, Any]) -> None:
    assert_same_state(loaded, original)
    for (name_a, a), (name_b, b) in itertools.combinations(original.items(), 2):
        got_a, got_b = loaded[name_a], loaded[name_b]
        assert (got_a is got_b) == (a is b), (name_a, name_b)
        if a is not b and a.numel() and b.numel() and _shares(a, b):
            assert _shares(got_a, got_b), (name_a, name_b)
            for want, got in ((a, got_a), (b, got_b)):
                assert got.stride() == want.stride(), (name_a, name_b)
                assert (got.is_conj(), got.is_neg()) == (want.is_conj(), want.is_neg())
    for name, value in original.items():
        assert type(loaded[name]) is type(value), name
        if value.stride() and 0 in value.stride() and value.numel() > 1:
            assert loaded[name].stride() == value.stride(), name  # an expand stays one


@given(state=aliased_states(), use_mmap=st.booleans())
def test_aliased_tensors_come_back_exactly(
    state: dict[str, Any], use_mmap: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.ckpt"
        ckptkit.save(path, state)
        loaded = ckptkit.load(path, verify="full", mmap=use_mmap).state
        _check(state, loaded)


@given(state=aliased_states())
def test_aliased_tensors_stay_aliased_on_another_device(state: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.ckpt"
        ckptkit.save(path, state)
        loaded = ckptkit.load(path, map_location="meta").state
    for (name_a, a), (name_b, b) in itertools.combinations(state.items(), 2):
        got_a, got_b = loaded[name_a], loaded[name_b]
        assert (got_a is got_b) == (a is b)
        if a is not b and a.numel() and b.numel() and _shares(a, b):
            assert got_a.untyped_storage()._cdata == got_b.untyped_storage()._cdata


@st.composite
def numpy_states(draw: st.DrawFn) -> dict[str, Any]:
    """numpy arrays, views of them, and torch tensors over their memory."""
    base = np.arange(
        draw(st.integers(1, 12)), dtype=draw(st.sampled_from([np.float64, np.int32]))
    )
    state: dict[str, Any] = {"base": base} if draw(st.booleans()) else {}
    for index in range(draw(st.integers(0, 3))):
        start, step = (
            draw(st.integers(0, base.size - 1)),
            draw(st.sampled_from([1, 2, -1])),
        )
        view = base[start::step]
        if draw(st.booleans()):
            state[f"torch{index}"] = torch.from_numpy(view.copy() if step < 0 else view)
        else:
            state[f"view{index}"] = view
    state["unrelated"] = np.ones(2)
    # numpy scalars own their value: never refused, however many share a dtype
    for index in range(draw(st.integers(0, 3))):
        state[f"scalar{index}"] = base.dtype.type(draw(st.integers(-5, 5)))
    return state


def _refused_pair(state: dict[str, Any], a: str, b: str) -> bool:
    """numpy memory overlapping another leaf, or tensors over overlapping memory
    that do not start one storage: what ckptkit cannot rebuild shared."""
    first, second = state[a], state[b]
    if first is second:
        return False
    torch_pair = isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor)
    if torch_pair and first.untyped_storage().data_ptr() == (
        second.untyped_storage().data_ptr()
    ):
        return False  # views of one storage: kept
    as_numpy = [
        v.numpy() if isinstance(v, torch.Tensor) else v for v in (first, second)
    ]
    return bool(np.may_share_memory(*as_numpy))


def _may_overlap(state: dict[str, Any]) -> bool:
    return any(_refused_pair(state, a, b) for a, b in itertools.combinations(state, 2))


@given(state=numpy_states())
def test_numpy_sharing_memory_is_refused_else_exact(state: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.ckpt"
        if _may_overlap(state):
            with pytest.raises(ckptkit.SerializationError, match="share memory"):
                ckptkit.save(path, state)
            assert not path.exists()
            return
        ckptkit.save(path, state)
        assert_same_state(ckptkit.load(path, verify="full").state, state)
