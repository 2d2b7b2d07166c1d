"""An async save writes what a sync save writes, whatever the caller does next."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit
from ckptkit._file.codec import encode_state
from ckptkit._file.format import KEY_HEADER, METADATA_KEY
from ckptkit.errors import SerializationError
from ckptkit.manager._freeze import NotFrozenError
from ckptkit.manager._snapshot import HostSnapshotBuffer

from ..strategies import states, tensors


@st.composite
def shared_storage(draw: st.DrawFn) -> dict[str, Any]:
    """One tensor seen through tied references and several views of its storage."""
    base = draw(tensors())
    views: list[torch.Tensor] = [base]
    if base.dim() >= 1 and base.shape[0] > 1:
        views.append(base[1:])
    if base.dim() >= 2:
        views.append(base.transpose(0, 1))
    picks = draw(st.lists(st.sampled_from(views), max_size=3))
    return {"base": base, "tied": base, "views": picks}


def _file_parts(path: Path) -> tuple[Any, Any, bytes]:
    """Tensor table, ckptkit header without its time, and the tensor bytes."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    top = json.loads(raw[8 : 8 + length])
    header = json.loads(top.pop(METADATA_KEY)[KEY_HEADER])
    del header["created_at"]
    return top, header, raw[8 + length :]


def _scribble(node: Any) -> None:
    """Overwrite every tensor and array in place and empty every container."""
    if isinstance(node, torch.Tensor):
        if node.numel():
            raw = torch.empty(0, dtype=torch.uint8).set_(node.untyped_storage())
            raw.fill_(0xAB)
    elif isinstance(node, np.ndarray):
        node.fill(7)
    elif isinstance(node, dict):
        for value in node.values():
            _scribble(value)
        node.clear()
    elif isinstance(node, (list, tuple)) and not isinstance(node, torch.Size):
        for value in node:
            _scribble(value)
        if isinstance(node, list):
            node.clear()


@given(state=st.tuples(states(max_leaves=8), shared_storage()))
def test_async_file_equals_sync_file_even_if_the_state_changes_at_once(
    state: Any,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ckptkit.CheckpointManager(root / "sync") as mgr:
            mgr.save(1, state)
        with ckptkit.CheckpointManager(root / "async", async_save=True) as mgr:
            mgr.save(1, state)
            _scribble(state)
        sync = _file_parts(root / "sync" / "step-000000000001.ckpt")
        done = _file_parts(root / "async" / "step-000000000001.ckpt")
        # The sync file was written before the scribbling: equal files mean the
        # async one holds the state as it was when save() returned.
        assert sync == done


@st.composite
def shared_arrays(draw: st.DrawFn) -> dict[str, Any]:
    """A numpy array, its views, and a tensor on its memory (codec groups them)."""
    base = np.arange(draw(st.integers(2, 12)), dtype=np.float32)
    views = [base, base[1:], base[: len(base) // 2], base[::2], base.reshape(-1, 1)]
    picks = draw(st.lists(st.sampled_from(views), max_size=4))
    rng = ("MT19937", np.arange(4, dtype=np.uint32), 1, 0, 0.0)
    return {"arrays": picks, "torch_view": torch.from_numpy(base), "rng": rng}


def _encoded_bytes(state: Any) -> tuple[Any, Any, list[tuple[str, str, bytes]]]:
    encoded = encode_state(state)
    entries = [
        (
            e.name,
            e.dtype,
            e.tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes(),
        )
        if e.tensor.numel()
        else (e.name, e.dtype, b"")
        for e in encoded.entries
    ]
    return encoded.tree, encoded.leaves, entries


@given(state=st.tuples(states(max_leaves=10), shared_storage(), shared_arrays()))
def test_every_supported_state_is_frozen_and_encodes_as_the_original(
    state: Any,
) -> None:
    """The copy an async save takes (no encode-first fallback) encodes identically.

    Memory shared other than by views of one torch storage (a numpy array and a
    tensor over it) is refused by the codec: the copy must not hide that, so it
    defers to the codec (``NotFrozenError``), and the manager refuses at once.
    """
    try:
        expected = _encoded_bytes(state)
    except SerializationError:
        with pytest.raises(NotFrozenError):
            HostSnapshotBuffer().freeze(state)
        return
    frozen = HostSnapshotBuffer().freeze(state)  # NotFrozenError fails the test
    _scribble(state)
    assert _encoded_bytes(frozen) == expected


def test_async_save_refuses_at_once_what_a_sync_save_refuses(tmp_path: Path) -> None:
    """A numpy array over a tensor's memory: refused by save(), not later."""
    base = np.arange(4, dtype=np.float32)
    with ckptkit.CheckpointManager(tmp_path / "run", async_save=True) as manager:
        for arrays in ([base], [base[1:]]):
            state = {"arrays": arrays, "t": torch.from_numpy(base)}
            with pytest.raises(SerializationError, match="share memory"):
                manager.save(1, state)
        assert manager.steps() == []
