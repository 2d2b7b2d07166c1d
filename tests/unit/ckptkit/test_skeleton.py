"""Container format 2: the state's skeleton as MessagePack in its own entry.

What a reader does with skeletons it did not write (damaged, crafted, newer),
how deep states are refused, and regressions the aliasing property tests found.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
import pytest
import torch

import ckptkit
from ckptkit._file.codec import MAX_STATE_DEPTH
from ckptkit._file.digest import digest
from ckptkit._file.format import KEY_HEADER, KEY_MIN_READER, SKELETON_ENTRY

from ...support.corrupt import rewrite_header

if TYPE_CHECKING:
    from pathlib import Path


def _replace_skeleton(path: Path, skeleton: bytes) -> None:
    """Write a file whose skeleton is ``skeleton``, every checksum valid."""
    ckptkit.save(path, {"placeholder": 0})
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    top = json.loads(raw[8 : 8 + length])
    old = raw[8 + length :]
    spec = top[SKELETON_ENTRY]
    assert spec["data_offsets"] == [0, len(old)]
    header = json.loads(top["__metadata__"][KEY_HEADER])
    text = json.dumps(top[SKELETON_ENTRY]).encode()
    new_spec = dict(spec, shape=[len(skeleton)], data_offsets=[0, len(skeleton)])
    checksum = header["checksums"][SKELETON_ENTRY]
    path.write_bytes(raw)
    new_text = json.dumps(new_spec).replace(" ", "").encode()
    rewrite_header(path, text.replace(b" ", b""), new_text)
    rewrite_header(path, checksum.encode(), digest(skeleton).encode())
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    path.write_bytes(raw[: 8 + length] + skeleton)


def _tagged(tag: int, *body: Any) -> list[Any]:
    return [msgpack.ExtType(tag, b""), *body]


def test_new_files_are_format_2_and_name_the_reader_they_need(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    info = ckptkit.save(path, {"w": torch.ones(2), "step": 1})
    assert info.format_version == 2
    assert [t.name for t in info.tensors] == ["w"]  # the skeleton is not a tensor
    header = path.read_bytes()[: 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]]
    assert f'"{KEY_MIN_READER}":"0.2.0"'.encode() in header


def test_crafted_skeleton_round_trips_through_the_helper(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    _replace_skeleton(path, msgpack.packb({"x": _tagged(1, 1, 2)}))
    assert ckptkit.load(path, verify="full").state == {"x": (1, 2)}


@pytest.mark.parametrize(
    ("skeleton", "kind"),
    [
        (msgpack.packb([[[[[[1]]]]]] * 2)[:-1], "corrupted"),  # cut short
        (msgpack.packb(1) + b"\x01", "corrupted"),  # trailing bytes
        (b"\x91" * 3000 + b"\xc0", "corrupted"),  # deeper than MessagePack reads
        (msgpack.packb({"a": msgpack.ExtType(1, b"")}), "corrupted"),  # a stray tag
        (msgpack.packb([*_tagged(1, 1), msgpack.ExtType(2, b"")]), "corrupted"),
        (msgpack.packb(_tagged(4, 0)), "corrupted"),  # a leaf that is not stored
        (msgpack.packb(_tagged(5, "no_such_dtype")), "corrupted"),
        (msgpack.packb([msgpack.ExtType(1, b"data")]), "corrupted"),
        (msgpack.packb(_tagged(12, 2024)), "corrupted"),  # a datetime of one field
        (msgpack.packb(_tagged(99, 1)), "incompatible"),  # a tag from a newer ckptkit
        (msgpack.packb(_tagged(18, "no_such_module", "X", "A")), "incompatible"),
    ],
)
def test_bad_skeleton_is_a_checkpoint_error_never_a_traceback(
    tmp_path: Path, skeleton: bytes, kind: str
) -> None:
    path = tmp_path / "a.ckpt"
    _replace_skeleton(path, skeleton)
    with pytest.raises(ckptkit.CheckpointError) as caught:
        ckptkit.load(path)
    assert caught.value.kind == kind
    assert ckptkit.validate(path, level="quick").kind in (kind, None)


def test_newer_tag_names_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    _replace_skeleton(path, msgpack.packb({"x": _tagged(99)}))
    with pytest.raises(ckptkit.CheckpointIncompatibleError, match="upgrade ckptkit"):
        ckptkit.load(path)
    assert ckptkit.validate(path).kind == "incompatible"


def test_damaged_skeleton_is_found_at_quick_level(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.ones(4), "history": list(range(100))})
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the skeleton is the last entry
    path.write_bytes(bytes(data))
    report = ckptkit.validate(path, level="quick")
    assert report.kind == "corrupted"
    assert SKELETON_ENTRY in report.reason
    with pytest.raises(ckptkit.ChecksumMismatchError):
        ckptkit.load(path, verify="none")


def _deep(levels: int) -> Any:
    state: Any = "leaf"
    for _ in range(levels):
        state = {"a": [state]}
    return state


def test_state_deeper_than_the_limit_is_refused_cleanly(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "ok.ckpt", _deep(MAX_STATE_DEPTH // 2 - 1))
    assert ckptkit.load(tmp_path / "ok.ckpt").state == _deep(MAX_STATE_DEPTH // 2 - 1)
    with pytest.raises(ckptkit.SerializationError, match="nested more than 200"):
        ckptkit.save(tmp_path / "deep.ckpt", _deep(5000))
    assert not (tmp_path / "deep.ckpt").exists()


def test_state_that_contains_itself_is_refused(tmp_path: Path) -> None:
    loop: list[Any] = [1]
    loop.append({"back": loop})
    with pytest.raises(ckptkit.SerializationError, match="contains itself"):
        ckptkit.save(tmp_path / "a.ckpt", {"x": loop})


def test_huge_ints_round_trip(tmp_path: Path) -> None:
    """Beyond Python's 4300-digit str limit: once a raw ValueError on save."""
    state = {"big": 3**20000, "neg": -(2**100000) + 1, "keys": {2**70: "k"}}
    ckptkit.save(tmp_path / "a.ckpt", state)
    assert ckptkit.load(tmp_path / "a.ckpt").state == state


def test_lone_strided_view_is_saved(tmp_path: Path) -> None:
    """Regression: a 1-D strided view alone on its storage raised RuntimeError."""
    view = torch.arange(10.0)[::3]
    ckptkit.save(tmp_path / "a.ckpt", {"v": view, "one": torch.arange(4.0)[1:2:2]})
    loaded = ckptkit.load(tmp_path / "a.ckpt", verify="full").state
    assert torch.equal(loaded["v"], view)


def test_one_element_numpy_view_with_negative_stride_is_saved(tmp_path: Path) -> None:
    """Regression: numpy calls it contiguous, torch.from_numpy refused it."""
    array = np.arange(4.0)[3:2:-1]
    ckptkit.save(tmp_path / "a.ckpt", {"a": array})
    assert ckptkit.load(tmp_path / "a.ckpt").state["a"].tolist() == [3.0]


def test_numpy_scalars_of_one_dtype_are_saved(tmp_path: Path) -> None:
    """Regression: the second scalar's temporary array could reuse the freed
    address of the first one's, and save refused them as sharing memory."""
    state = {f"s{i}": np.float32(i) for i in range(20)} | {"i": np.int64(7)}
    ckptkit.save(tmp_path / "a.ckpt", state)
    loaded = ckptkit.load(tmp_path / "a.ckpt", verify="full").state
    assert loaded == state
    assert all(type(loaded[key]) is type(value) for key, value in state.items())


def test_from_numpy_views_with_one_start_share_after_loading(tmp_path: Path) -> None:
    """Regression: two storages at one address made save write a corrupt file."""
    base = np.arange(6.0)
    short, strided = torch.from_numpy(base[:2]), torch.from_numpy(base[::2])
    ckptkit.save(tmp_path / "a.ckpt", {"short": short, "strided": strided})
    assert ckptkit.validate(tmp_path / "a.ckpt").ok
    loaded = ckptkit.load(tmp_path / "a.ckpt").state
    assert loaded["strided"].tolist() == [0.0, 2.0, 4.0]
    loaded["short"][0] = 9.0
    assert loaded["strided"][0] == 9.0


def test_from_numpy_views_with_other_starts_are_refused(tmp_path: Path) -> None:
    base = np.arange(6.0)
    state = {"a": torch.from_numpy(base[:3]), "b": torch.from_numpy(base[2:])}
    with pytest.raises(ckptkit.SerializationError, match="without sharing a torch"):
        ckptkit.save(tmp_path / "a.ckpt", state)


def test_same_view_twice_comes_back_as_two_objects_sharing(tmp_path: Path) -> None:
    weight = torch.ones(3)
    state = {"a": weight.detach(), "b": weight.detach()}  # a state_dict's tied pair
    ckptkit.save(tmp_path / "a.ckpt", state)
    loaded = ckptkit.load(tmp_path / "a.ckpt").state
    assert loaded["a"] is not loaded["b"]
    loaded["a"][0] = 5.0
    assert loaded["b"][0] == 5.0
