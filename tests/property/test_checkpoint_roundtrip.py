"""Any supported state round-trips through save/load exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit

from ..strategies import assert_same_state, states


@given(state=states(), use_mmap=st.booleans())
def test_state_roundtrips_exactly(state: object, use_mmap: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.ckpt"
        ckptkit.save(path, state)
        loaded = ckptkit.load(path, verify="full", mmap=use_mmap)
        assert_same_state(loaded.state, state)
        assert ckptkit.validate(path).ok


@given(
    data=st.lists(st.floats(width=32, allow_nan=False), min_size=2, max_size=12),
    start=st.integers(0, 3),
    step=st.integers(1, 3),
)
def test_views_of_one_storage_come_back_sharing_storage(
    data: list[float], start: int, step: int
) -> None:
    base = torch.tensor(data)
    view = base[start::step]
    state = {"base": base, "view": view, "again": base}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tied.ckpt"
        ckptkit.save(path, state)
        loaded = ckptkit.load(path, verify="full").state
    assert loaded["again"] is loaded["base"]
    assert torch.equal(loaded["view"], view)
    if view.numel():
        assert (
            loaded["view"].untyped_storage().data_ptr()
            == loaded["base"].untyped_storage().data_ptr()
        )
        loaded["base"].fill_(7.0)
        assert bool((loaded["view"] == 7.0).all())
