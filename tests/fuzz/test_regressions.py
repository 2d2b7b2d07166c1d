"""Each failure the fuzzers (and the adversary's probes before them) found, as a
test named after it. Every one of these broke the promise before its fix: a
traceback, a hang, an allocation far beyond the file, or a wrong state loaded
without error."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import ckptkit
from ckptkit._file.torch_pickle import declared_storages

from . import hostile
from .harness import CASE_MEMORY_BYTES, run_readers
from .mutations import DEEP, Layers
from .seeds import FORMAT_1, ckptkit_seeds, legacy_seeds


def _crafted(seed: str, change: Any, *, deep: int = 0, fill: str = "") -> bytes:
    """A seed file with ``change(top, inner)`` applied, checksums recomputed."""
    layers = Layers.parse(ckptkit_seeds()[seed])
    change(layers.top, layers.inner)
    return layers.seal(deep=deep, fill=fill)


def _refused_everywhere(tmp_path: Path, data: bytes, reason: str) -> None:
    """Every reader refuses the file with a CheckpointError naming ``reason``."""
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(data)
    outcomes = run_readers(path)
    for name in ("load(verify=none)", "load(verify=full)", "validate(full)"):
        assert outcomes[name].kind == "refused", (name, outcomes[name])
        assert reason in outcomes[name].reason, (name, outcomes[name].reason)


def _blob_views(inner: dict[str, Any]) -> list[dict[str, Any]]:
    return [leaf["view"] for leaf in inner["leaves"] if "view" in leaf]


def test_deep_header_json_regression_is_refused_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    def deepen(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["tree"] = DEEP

    data = _crafted("plain", deepen, deep=100_000)
    _refused_everywhere(tmp_path, data, "nested too deeply")


def test_deep_state_tree_regression_is_refused_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    """Nested within the JSON parser's reach, beyond the state decoder's."""

    def deepen(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["tree"] = DEEP

    levels = 480  # at the edge of what the JSON parser and the decoder reach
    tree = '{"list":[' * levels + '{"int":"1"}' + "]}" * levels
    data = _crafted("plain", deepen, fill=tree)
    _refused_everywhere(tmp_path, data, "nested too deeply")


def test_infinity_in_a_shape_regression_is_refused_not_an_overflow_error(
    tmp_path: Path,
) -> None:
    def infinite(top: dict[str, Any], _inner: dict[str, Any]) -> None:
        top["w"]["shape"] = [float("inf"), 4]

    _refused_everywhere(tmp_path, _crafted("plain", infinite), "Infinity")


def test_float_shape_regression_is_refused_not_truncated(tmp_path: Path) -> None:
    """A shape of 3.7 used to be read as 3 (``int()``), silently."""

    def fractional(top: dict[str, Any], _inner: dict[str, Any]) -> None:
        top["w"]["shape"] = [3.0, 4]

    _refused_everywhere(tmp_path, _crafted("plain", fractional), "malformed")


def test_huge_float_in_the_state_regression_is_refused_not_an_overflow_error(
    tmp_path: Path,
) -> None:
    """Format 1 (the JSON tree in the header) wrote floats as hex text."""

    def huge(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["tree"]["dict"][2][1] = {"float": "0x1p99999"}  # "progress"

    _refused_everywhere(tmp_path, _crafted(FORMAT_1, huge), "too large")


def test_negative_leaf_index_regression_is_refused_not_another_leaf(
    tmp_path: Path,
) -> None:
    """{"tensor": -1} (format 1) used to load the last leaf in its place."""

    def negative(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["tree"]["dict"][0][1] = {"tensor": -1}  # "model"

    _refused_everywhere(tmp_path, _crafted(FORMAT_1, negative), "leaf -1")


@pytest.mark.parametrize("kind", [["tensor"], None, "sparse"])
def test_leaf_of_unknown_kind_regression_is_refused_everywhere(
    tmp_path: Path, kind: object
) -> None:
    """A list as a kind was a TypeError traceback; a missing one passed validate."""

    def unknown(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["leaves"][0]["kind"] = kind

    _refused_everywhere(tmp_path, _crafted("plain", unknown), "no known kind")


def test_generator_leaf_without_a_device_name_regression_is_refused(
    tmp_path: Path,
) -> None:
    def no_device(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        inner["leaves"][0].update(kind="generator", device=["cpu"])

    _refused_everywhere(tmp_path, _crafted("plain", no_device), "no known kind")


def _entry_of(inner: dict[str, Any], kind: str, **match: object) -> str:
    return next(
        leaf["entry"]
        for leaf in inner["leaves"]
        if leaf["kind"] == kind and all(leaf.get(k) == v for k, v in match.items())
    )


@pytest.mark.parametrize(
    ("kind", "match", "dtype", "shape"),
    [
        ("tensor", {"complex128": True}, "I64", [3, 2]),  # view_as_complex of ints
        ("ndarray", {}, "BF16", [2, 6]),  # a dtype numpy does not have
    ],
)
def test_leaf_over_an_entry_of_another_dtype_regression_is_refused_everywhere(
    tmp_path: Path, kind: str, match: dict[str, object], dtype: str, shape: list[int]
) -> None:
    """load refused such a file (the leaf cannot be built), validate passed it."""

    def retype(top: dict[str, Any], inner: dict[str, Any]) -> None:
        top[_entry_of(inner, kind, **match)].update(dtype=dtype, shape=shape)

    _refused_everywhere(
        tmp_path, _crafted("mixed", retype), "does not fit its stored tensor"
    )


def test_parameter_leaf_over_an_int_entry_regression_is_refused_everywhere(
    tmp_path: Path,
) -> None:
    """An int Parameter that requires grad: a raw RuntimeError from load."""

    def int_parameter(top: dict[str, Any], inner: dict[str, Any]) -> None:
        name = _entry_of(inner, "tensor")
        top[name]["dtype"] = "I32"  # the seed's tensors are F32: same size
        for leaf in inner["leaves"]:
            if leaf["entry"] == name:
                leaf.update(kind="parameter", requires_grad=True)

    _refused_everywhere(
        tmp_path, _crafted("plain", int_parameter), "does not fit its stored tensor"
    )


def test_zero_stride_view_regression_is_refused_not_materialised(
    tmp_path: Path,
) -> None:
    """A 10**12-element view over 96 stored bytes (stride 0) used to load."""

    def expanded(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        view = _blob_views(inner)[0]
        view["shape"], view["stride"] = [10**12], [0]

    _refused_everywhere(tmp_path, _crafted("views", expanded), "zero or overlapping")


def test_empty_view_of_huge_dims_regression_is_refused_by_every_reader(
    tmp_path: Path,
) -> None:
    """shape [0, 2**70]: validate used to pass it while load failed on it."""

    def empty_huge(_top: dict[str, Any], inner: dict[str, Any]) -> None:
        view = _blob_views(inner)[0]
        view["shape"], view["stride"] = [0, 2**70], [1, 1]

    _refused_everywhere(tmp_path, _crafted("views", empty_huge), "outside")


def test_a_small_zero_stride_view_still_loads(tmp_path: Path) -> None:
    """The limit is on crafted sizes: expand() views a state holds still load."""
    base = torch.arange(4.0)
    state = {"base": base, "rows": base.expand(3, 4)}
    ckptkit.save(tmp_path / "a.ckpt", state)
    loaded = ckptkit.load(tmp_path / "a.ckpt", verify="full").state
    assert torch.equal(loaded["rows"], state["rows"])
    assert loaded["rows"].stride() == (0, 1)


def test_fifo_regression_is_refused_without_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    """Opening a FIFO for reading used to block until a writer came: forever."""
    fifo = tmp_path / "model.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(ckptkit.CheckpointNotFoundError, match="FIFO"):
        ckptkit.load(fifo)
    assert not ckptkit.validate(fifo).ok
    tree = ckptkit.validate_tree([tmp_path])
    assert tree.not_checkpoints == (fifo,)
    assert tree.errors == ()


def test_legacy_storage_declared_beyond_the_file_regression_is_not_allocated(
    tmp_path: Path,
) -> None:
    """An old-format file of a few hundred bytes declaring a 4 TB storage."""
    path = tmp_path / "bomb.pt"
    path.write_bytes(hostile.in_old_format(hostile.tensor(2**40, 2, 1)))
    outcomes = run_readers(path)
    assert all(o.kind == "refused" for o in outcomes.values() if o.reason), outcomes
    assert "declares storages" in outcomes["load(verify=full)"].reason


@pytest.mark.parametrize(
    "payload",
    [
        hostile.tensor(-1, 2, 1),  # a storage of -1 elements: torch raised TypeError
        hostile.tensor(2, -5, 1),  # a negative size
    ],
    ids=["negative-storage", "negative-size"],
)
def test_legacy_negative_sizes_regression_are_refused_not_a_type_error(
    tmp_path: Path, payload: bytes
) -> None:
    path = tmp_path / "negative.pt"
    path.write_bytes(hostile.in_zip(payload))
    outcomes = run_readers(path)
    assert outcomes["load(verify=quick)"].kind == "refused"
    assert outcomes["validate(full)"].kind == "refused"


def test_legacy_pickle_cut_short_regression_is_refused_not_an_index_error(
    tmp_path: Path,
) -> None:
    """torch raised a bare EOFError; its empty message broke the error's own
    message (``splitlines()[0]``)."""
    path = tmp_path / "short.pt"
    path.write_bytes(hostile.in_old_format(hostile.PROTO))
    with pytest.raises(ckptkit.CheckpointCorruptError, match="EOFError"):
        ckptkit.load(path)


def test_legacy_undeclared_storage_key_regression_is_refused_not_an_assertion(
    tmp_path: Path,
) -> None:
    """Old format, the state naming a storage the file does not hold: torch
    checks that with ``assert`` (found by nox -s fuzz, a flipped byte)."""
    seed = legacy_seeds()["torch-old"]
    path = tmp_path / "old.pt"
    path.write_bytes(seed)
    with path.open("rb") as handle:
        (storage, *_) = declared_storages(handle, path)
    key = storage.key.encode()
    path.write_bytes(seed.replace(key, b"9" * len(key), 1))  # only the state's
    with pytest.raises(ckptkit.CheckpointCorruptError, match="unreadable"):
        ckptkit.load(path)


def test_legacy_zero_stride_tensor_regression_is_refused_not_returned(
    tmp_path: Path,
) -> None:
    """A torch.save zip whose tensor is 2**40 elements over 8 bytes (stride 0)."""
    path = tmp_path / "expanded.pt"
    path.write_bytes(hostile.in_zip(hostile.tensor(2, 2**40, 0), storage_bytes=8))
    with pytest.raises(ckptkit.CheckpointCorruptError, match="zero or overlapping"):
        ckptkit.load(path)


def test_legacy_lying_string_length_regression_allocates_no_more_than_the_file(
    tmp_path: Path,
) -> None:
    """A 4 GB string length in a small file: the read used to allocate 4 GB.

    run_readers caps this process's address space (CASE_MEMORY_BYTES more than
    it has): a read allocating the claimed length fails the test.
    """
    assert CASE_MEMORY_BYTES < 2**32 - 1
    path = tmp_path / "lying.pt"
    path.write_bytes(hostile.in_old_format(hostile.lying_length(2**32 - 1)))
    outcomes = run_readers(path)
    assert outcomes["load(verify=quick)"].kind == "refused"


def test_legacy_pickle_protocol_warning_regression_is_not_raised(
    tmp_path: Path,
) -> None:
    """torch warns about protocol 3 files (an error under -W error)."""
    path = tmp_path / "protocol3.pt"
    torch.save({"w": torch.ones(2)}, path, pickle_protocol=3)
    assert torch.equal(ckptkit.load(path).state["w"], torch.ones(2))


def test_legacy_deep_nesting_loads_and_validates_without_recursion(
    tmp_path: Path,
) -> None:
    """Nested deeper than Python recurses: read iteratively, start to end."""
    path = tmp_path / "deep.pt"
    path.write_bytes(hostile.in_zip(hostile.deep_nesting(5_000)))
    assert ckptkit.validate(path).ok
    state = ckptkit.load(path).state
    assert isinstance(state, list)


def test_legacy_shared_lists_are_walked_once_each(tmp_path: Path) -> None:
    """2**300 paths in ~6 KB: every check visits each list once."""
    path = tmp_path / "shared.pt"
    path.write_bytes(hostile.in_zip(hostile.shared_lists(300)))
    done = threading.Event()
    result: list[Any] = []

    def work() -> None:
        result.append(ckptkit.validate(path))
        done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    assert done.wait(120), "validate walked every path of the shared lists"
    assert result[0].ok
