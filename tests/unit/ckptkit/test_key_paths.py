"""Issue 13 item 6: key paths reach state_dict entries whose names hold dots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import ckptkit

if TYPE_CHECKING:
    from pathlib import Path


def _compiled_model_state(tmp_path: Path) -> Path:
    """A torch.compile'd model's state_dict: the names themselves hold dots."""
    path = tmp_path / "a.ckpt"
    state = {
        "model": {
            "_orig_mod.tok_emb.weight": torch.ones(3),
            "_orig_mod.head.bias": torch.zeros(2),
        },
        "optim": {"state": {0: {"step": torch.tensor(5.0)}}},
        "step": 7,
    }
    ckptkit.save(path, state)
    return path


def test_load_keys_reach_a_name_with_dots_by_parts(tmp_path: Path) -> None:
    path = _compiled_model_state(tmp_path)
    state = ckptkit.load(
        path, keys=[("model", "_orig_mod.tok_emb.weight"), ("optim", "state", 0)]
    ).state
    assert list(state["model"]) == ["_orig_mod.tok_emb.weight"]
    assert torch.equal(state["model"]["_orig_mod.tok_emb.weight"], torch.ones(3))
    assert torch.equal(state["optim"]["state"][0]["step"], torch.tensor(5.0))


def test_load_keys_reach_a_name_with_dots_by_escaping(tmp_path: Path) -> None:
    path = _compiled_model_state(tmp_path)
    state = ckptkit.load(path, keys=[r"model._orig_mod\.head\.bias"]).state
    assert list(state["model"]) == ["_orig_mod.head.bias"]


def test_required_keys_with_dots_in_names(tmp_path: Path) -> None:
    path = _compiled_model_state(tmp_path)
    assert ckptkit.validate(
        path,
        required_keys=[
            ("model", "_orig_mod.tok_emb.weight"),
            r"model._orig_mod\.head\.bias",
        ],
    ).ok
    report = ckptkit.validate(path, required_keys=["model._orig_mod.head.bias"])
    assert report.kind == "missing_keys"
    assert r"model._orig_mod.head.bias" in report.reason


def test_missing_key_by_parts_names_it_escaped(tmp_path: Path) -> None:
    path = _compiled_model_state(tmp_path)
    with pytest.raises(KeyError, match=r"key 'model\._orig_mod.*\.nope' is not in"):
        ckptkit.load(path, keys=[("model", "_orig_mod.nope")])


def test_cli_require_takes_an_escaped_key(tmp_path: Path) -> None:
    from ...integration.test_ckptkit_cli import ckptkit_cli

    path = _compiled_model_state(tmp_path)
    ok = ckptkit_cli("validate", "--require", r"model._orig_mod\.head\.bias", path)
    assert ok.returncode == 0, ok.stdout + ok.stderr


@given(parts=st.lists(st.text(alphabet="ab.\\", max_size=4), min_size=1, max_size=4))
def test_key_text_splits_back_into_its_parts(parts: list[str]) -> None:
    from ckptkit.keys import key_text, split_key

    assume(parts != [""])  # one empty part reads as the empty path: use parts
    assert split_key(key_text(parts)) == tuple(parts)
