"""Behaviour of ckptkit.save / load / inspect on real files."""

from __future__ import annotations

import json
import os
import random
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import pytest
import safetensors.torch
import torch

import ckptkit
from ckptkit._file.format import KEY_HEADER

from ...strategies import assert_same_state
from ...support.corrupt import flip_tensor_bit

if TYPE_CHECKING:
    from pathlib import Path


def test_save_returns_info_matching_inspect(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    info = ckptkit.save(
        path,
        {"w": torch.ones(2, 3)},
        schema="demo",
        status="in_progress",
        metadata={"k": [1]},
    )
    seen = ckptkit.inspect(path)
    assert (seen.version, seen.schema, seen.status, seen.metadata) == (
        "1.0",
        "demo",
        "in_progress",
        {"k": [1]},
    )
    assert seen.tensor_count == info.tensor_count == 1
    assert seen.nbytes == info.nbytes == 24
    assert seen.created_at == info.created_at
    assert seen.created_at.endswith("Z")
    assert not seen.legacy
    assert seen.format_version == 2  # container format 2 since the MessagePack skeleton
    assert ckptkit.CHECKPOINT_VERSION == "1.0"


def test_plain_safetensors_tools_read_the_tensors(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    weights = {"layer.weight": torch.randn(3, 4), "layer.bias": torch.randn(3)}
    ckptkit.save(path, {"model": weights})
    plain = safetensors.torch.load_file(path)
    assert torch.equal(plain["model.layer.weight"], weights["layer.weight"])
    assert torch.equal(plain["model.layer.bias"], weights["layer.bias"])


def test_save_rejects_unsupported_leaf_naming_its_path(tmp_path: Path) -> None:
    state = {"optim": {"sched": object()}}
    with pytest.raises(TypeError, match=r"state\['optim'\]\['sched'\].*object"):
        ckptkit.save(tmp_path / "x.ckpt", state)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_invalid_status_and_legacy_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="done"):
        ckptkit.save(tmp_path / "x.ckpt", {}, status="done")
    with pytest.raises(ValueError, match="legacy"):
        ckptkit.save(tmp_path / "x.ckpt", {}, version="0.x")
    with pytest.raises(ValueError, match="not a version"):
        ckptkit.save(tmp_path / "x.ckpt", {}, version="banana")


def test_failed_save_keeps_old_checkpoint_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"step": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        ckptkit.save(path, {"step": 2, "bad": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_save_does_not_mutate_the_callers_state(tmp_path: Path) -> None:
    tensor = torch.arange(6).reshape(2, 3).t()
    state = {"t": tensor, "list": [1, 2]}
    ckptkit.save(tmp_path / "a.ckpt", state)
    assert state == {"t": tensor, "list": [1, 2]}
    assert not tensor.is_contiguous()


def test_requires_grad_of_a_plain_tensor_is_not_kept(tmp_path: Path) -> None:
    """Like a state_dict: only an nn.Parameter carries requires_grad (kept)."""
    grad = torch.ones(2, requires_grad=True)
    ckptkit.save(tmp_path / "a.ckpt", {"t": grad})
    loaded = ckptkit.load(tmp_path / "a.ckpt").state["t"]
    assert type(loaded) is torch.Tensor
    assert not loaded.requires_grad


def test_a_lone_strided_view_is_saved_as_its_own_values(tmp_path: Path) -> None:
    """A column view reshapes to a strided 1-D view: it must be copied, not cast."""
    column = torch.arange(12.0).reshape(3, 4)[:, 1:2]
    ckptkit.save(tmp_path / "a.ckpt", {"column": column})
    loaded = ckptkit.load(tmp_path / "a.ckpt", verify="full").state["column"]
    assert loaded.tolist() == [[1.0], [5.0], [9.0]]


def test_parameter_comes_back_a_parameter_with_its_requires_grad(
    tmp_path: Path,
) -> None:
    trained = torch.nn.Parameter(torch.ones(2))
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    ckptkit.save(tmp_path / "a.ckpt", {"p": trained, "f": frozen, "again": trained})
    loaded = ckptkit.load(tmp_path / "a.ckpt").state
    assert type(loaded["p"]) is torch.nn.Parameter
    assert loaded["p"].requires_grad
    assert not loaded["f"].requires_grad
    assert loaded["again"] is loaded["p"]


def test_container_types_and_key_order_are_kept(tmp_path: Path) -> None:
    state = {
        "z": 1,
        "a": (1, [2, (3,)]),
        "od": OrderedDict([("b", 1), ("a", 2)]),
        5: "int key",
        2.5: "float key",
        None: "none key",
        True: "bool key",
    }
    ckptkit.save(tmp_path / "a.ckpt", state)
    assert_same_state(ckptkit.load(tmp_path / "a.ckpt").state, state)


def test_rng_states_round_trip(tmp_path: Path) -> None:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    ckptkit.save(tmp_path / "rng.ckpt", state)
    loaded = ckptkit.load(tmp_path / "rng.ckpt", verify="full").state
    random.setstate(loaded["python"])
    np.random.set_state(loaded["numpy"])
    torch.set_rng_state(loaded["torch"])
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())


def test_load_subset_of_keys_reads_only_those(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"model": {"w": torch.ones(2)}, "optim": {"lr": 0.1}, "step": 4})
    partial = ckptkit.load(path, keys=["model.w", "step"]).state
    assert list(partial) == ["model", "step"]
    assert torch.equal(partial["model"]["w"], torch.ones(2))
    with pytest.raises(KeyError, match="nope"):
        ckptkit.load(path, keys=["nope"])


def test_missing_file_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(ckptkit.CheckpointNotFoundError) as caught:
        ckptkit.load(tmp_path / "absent.ckpt")
    assert isinstance(caught.value, FileNotFoundError)
    assert caught.value.kind == "missing"
    report = ckptkit.validate(tmp_path / "absent.ckpt")
    assert (report.ok, report.kind) == (False, "missing")


def _rewrite_header(path: Path, change: object) -> None:
    """Edit the ckptkit header JSON and recompute the header checksum."""
    from ckptkit._file.digest import header_checksum_span, header_digest

    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    top = json.loads(raw[8 : 8 + length])
    change(top)  # type: ignore[operator]
    text = json.dumps(top, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    region = bytearray(struct.pack("<Q", len(text)) + text)
    span = header_checksum_span(bytes(region))
    assert span is not None
    region[span[0] : span[1]] = b"0" * 16
    region[span[0] : span[1]] = header_digest(bytes(region), span).encode()
    path.write_bytes(bytes(region) + raw[8 + length :])


def test_newer_container_format_is_incompatible_and_names_the_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "future.ckpt"
    ckptkit.save(path, {"w": torch.ones(1)})

    def bump(top: dict) -> None:  # type: ignore[type-arg]
        top["__metadata__"]["ckptkit.format_version"] = "99"
        top["__metadata__"]["ckptkit.min_reader"] = "9.0"

    _rewrite_header(path, bump)
    with pytest.raises(
        ckptkit.CheckpointIncompatibleError, match=r"upgrade ckptkit to >= 9\.0"
    ):
        ckptkit.load(path)
    assert ckptkit.validate(path).kind == "incompatible"


def test_header_edit_without_new_checksum_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"status_word": "complete"}, status="in_progress")
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"in_progress", b"complete\x20\x20\x20"))
    with pytest.raises(ckptkit.ChecksumMismatchError):
        ckptkit.inspect(path)


def test_tree_referring_to_missing_tensor_fails_quick_validation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.ones(1)})

    def break_tree(top: dict) -> None:  # type: ignore[type-arg]
        header = json.loads(top["__metadata__"][KEY_HEADER])
        header["leaves"][0]["entry"] = "elsewhere"
        top["__metadata__"][KEY_HEADER] = json.dumps(header)

    _rewrite_header(path, break_tree)
    report = ckptkit.validate(path, level="quick")
    assert (report.ok, report.kind) == (False, "corrupted")
    assert "not stored" in report.reason


def test_validation_levels_differ_on_data_damage(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.zeros(64)})
    flip_tensor_bit(path)  # in 'w', the first entry
    assert ckptkit.validate(path, level="exists").ok
    assert ckptkit.validate(path, level="quick").ok
    full = ckptkit.validate(path, level="full")
    assert (full.ok, full.kind) == (False, "corrupted")
    assert "checksum mismatch in tensor 'w'" in full.reason


def test_required_keys_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"model": {"w": torch.ones(1)}, "epoch": 3})
    assert ckptkit.validate(path, required_keys=["model.w", "epoch"]).ok
    report = ckptkit.validate(path, required_keys=["model.w", "optim"])
    assert not report.ok
    assert "optim" in report.reason


def test_empty_file_is_corrupted_not_missing(tmp_path: Path) -> None:
    path = tmp_path / "empty.ckpt"
    path.touch()
    report = ckptkit.validate(path, level="exists")
    assert (report.ok, report.kind) == (False, "corrupted")


def test_mmap_load_of_complex128_at_any_file_offset(tmp_path: Path) -> None:
    """complex128 needs 16-byte alignment; a mapped entry may start at 8 mod 16.

    The header grows by 8 bytes per case, so some cases put the entries at an
    offset that is not a multiple of 16 (this crashed the process before).
    """
    base = torch.tensor([1 + 2j, 3 - 4j, -5j, 6.0], dtype=torch.complex128)
    state = {"c": torch.tensor([0.5 - 1j]), "views": (base[0:2], base[1:4])}
    state["c"] = state["c"].to(torch.complex128)
    for pad in range(4):
        path = tmp_path / f"c{pad}.ckpt"
        ckptkit.save(path, state, metadata={"pad": "x" * 8 * pad})
        loaded = ckptkit.load(path, mmap=True, verify="full").state
        assert_same_state(loaded, state)
        assert (loaded["c"] * 2).tolist() == [1 - 2j]
        assert loaded["views"][0].untyped_storage().data_ptr() == (
            loaded["views"][1].untyped_storage().data_ptr()
        )


def test_map_location_and_mmap_load(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.arange(10.0)})
    mapped = ckptkit.load(path, mmap=True, verify="full").state["w"]
    assert torch.equal(mapped, torch.arange(10.0))
    mapped += 1  # private mapping: the file is unchanged
    assert torch.equal(ckptkit.load(path).state["w"], torch.arange(10.0))
    meta = ckptkit.load(path, map_location="meta").state["w"]
    assert meta.device.type == "meta"


def test_temp_files_are_not_checkpoints_and_cleanup_removes_dead_ones(
    tmp_path: Path,
) -> None:
    dead_pid = 2**22 + 12345  # above pid_max on this kernel: never alive
    stale = tmp_path / f".a.ckpt.0123456789ab.{dead_pid}.ckptkit-tmp"
    stale.write_bytes(b"partial")
    # The writer is another live process (a temporary file of this process
    # that no write of it has open is stale).
    live = tmp_path / f".b.ckpt.0123456789ab.{os.getppid()}.ckptkit-tmp"
    live.write_bytes(b"in flight")
    assert ckptkit.validate(stale).kind == "missing"
    assert ckptkit.cleanup(tmp_path) == [stale]
    assert live.exists()
    assert not stale.exists()
