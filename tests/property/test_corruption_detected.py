"""Any truncation or single bit flip of a checkpoint is detected at level full."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit

from ..strategies import states


def _write(folder: str, state: object) -> tuple[Path, bytes]:
    path = Path(folder) / "victim.ckpt"
    ckptkit.save(path, state, schema="test", metadata={"note": "corruption"})
    return path, path.read_bytes()


_STATE_WITH_DATA = st.fixed_dictionaries(
    {
        "w": st.just(torch.arange(24, dtype=torch.float32).reshape(4, 6)),
        "rest": states(6),
    }
)


@given(state=_STATE_WITH_DATA, fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncation_anywhere_is_reported_corrupted(
    state: object, fraction: float
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, original = _write(folder, state)
        path.write_bytes(original[: int(len(original) * fraction)])
        report = ckptkit.validate(path, level="full")
        assert not report.ok
        assert report.kind == "corrupted", report.reason
        with pytest.raises(ckptkit.CheckpointCorruptError):
            ckptkit.load(path, verify="full")


@given(
    state=_STATE_WITH_DATA,
    position=st.floats(0.0, 1.0, exclude_max=True),
    bit=st.integers(0, 7),
)
def test_any_single_bit_flip_is_reported_corrupted(
    state: object, position: float, bit: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, original = _write(folder, state)
        damaged = bytearray(original)
        damaged[int(len(original) * position)] ^= 1 << bit
        path.write_bytes(bytes(damaged))
        report = ckptkit.validate(path, level="full")
        assert not report.ok
        assert report.kind == "corrupted", report.reason
        with pytest.raises(ckptkit.CheckpointCorruptError):
            ckptkit.load(path, verify="full")


def test_every_bit_flip_of_a_small_checkpoint_is_detected(tmp_path: Path) -> None:
    """Exhaustive over every bit of one small file (header, padding and data)."""
    path = tmp_path / "small.ckpt"
    ckptkit.save(path, {"w": torch.arange(4, dtype=torch.int16), "step": 3})
    original = path.read_bytes()
    missed = []
    for index in range(len(original) * 8):
        damaged = bytearray(original)
        damaged[index // 8] ^= 1 << (index % 8)
        path.write_bytes(bytes(damaged))
        report = ckptkit.validate(path, level="full")
        if report.ok or report.kind != "corrupted":
            missed.append((index, report.kind, report.reason))
    assert missed == []
