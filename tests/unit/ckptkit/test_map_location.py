"""Issue 13 item 7: map_location moves tensors and keeps what they share; only
``dtype=`` casts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

import ckptkit

if TYPE_CHECKING:
    from pathlib import Path


def _storage_id(tensor: torch.Tensor) -> int:
    """Identity of a tensor's storage on any device (meta storages have no data)."""
    return int(tensor.untyped_storage()._cdata)


def _tied_state() -> dict[str, object]:
    embedding = torch.arange(12.0).reshape(4, 3)
    return {
        "model": {"tok_emb.weight": embedding, "lm_head.weight": embedding},
        "row": embedding[1],
        "transposed": embedding.t(),
        "half": torch.ones(2, dtype=torch.float16),
        "steps": torch.arange(3),
        "numpy": np.arange(3.0),
    }


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_tied_and_viewed_tensors_stay_tied_on_the_device(
    tmp_path: Path, device: str
) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _tied_state())
    state = ckptkit.load(path, map_location=device, verify="full").state
    model = state["model"]
    assert model["lm_head.weight"] is model["tok_emb.weight"]
    for view in (state["row"], state["transposed"]):
        assert view.device.type == device
        assert _storage_id(view) == _storage_id(model["tok_emb.weight"])
    assert state["transposed"].stride() == (1, 3)
    assert state["row"].storage_offset() == 3
    assert isinstance(state["numpy"], np.ndarray)  # numpy values stay on the host


def test_map_location_never_changes_a_dtype(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _tied_state())
    state = ckptkit.load(path, map_location=torch.device("meta")).state
    assert state["half"].dtype is torch.float16
    assert state["model"]["tok_emb.weight"].dtype is torch.float32
    with pytest.raises(TypeError, match=r"dtype=torch\.float16"):
        ckptkit.load(path, map_location=torch.float16)


def test_dtype_casts_floating_point_tensors_only_and_keeps_ties(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _tied_state())
    state = ckptkit.load(path, dtype=torch.bfloat16).state
    model = state["model"]
    assert model["tok_emb.weight"].dtype is torch.bfloat16
    assert model["lm_head.weight"] is model["tok_emb.weight"]
    assert state["half"].dtype is torch.bfloat16
    assert state["steps"].dtype is torch.int64
    assert state["numpy"].dtype == np.float64
    with pytest.raises(ValueError, match="not a floating-point dtype"):
        ckptkit.load(path, dtype=torch.int32)
    with pytest.raises(TypeError, match=r"dtype takes a torch\.dtype"):
        ckptkit.load(path, dtype="float16")  # type: ignore[arg-type]


def test_parameter_moves_as_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    weight = torch.nn.Parameter(torch.ones(2, 2))
    ckptkit.save(path, {"w": weight, "view": weight.detach()[0]})
    state = ckptkit.load(path, map_location="meta").state
    assert type(state["w"]) is torch.nn.Parameter
    assert state["w"].device.type == "meta"
    assert _storage_id(state["view"]) == _storage_id(state["w"])
