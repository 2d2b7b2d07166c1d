"""Legacy 0.x files: torch.save pickles and plain safetensors are read, never run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import safetensors.torch
import torch

import ckptkit

if TYPE_CHECKING:
    from pathlib import Path


class _RunsCode:
    """Unpickling this would call os.system: a malicious pickle."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_torch_save_dict_loads_as_legacy_read_only(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"w": torch.ones(3), "epoch": 2}, path)
    before = path.read_bytes()
    checkpoint = ckptkit.load(path, verify="full")
    assert checkpoint.info.version == "0.x"
    assert checkpoint.info.legacy
    assert checkpoint.info.legacy_kind == "torch"
    assert torch.equal(checkpoint.state["w"], torch.ones(3))
    assert checkpoint.state["epoch"] == 2
    assert ckptkit.validate(path).ok
    assert ckptkit.inspect(path).tensor_count == 1
    assert path.read_bytes() == before


def test_legacy_dict_with_version_and_status_keys_reports_them(tmp_path: Path) -> None:
    path = tmp_path / "broad.pt"
    torch.save({"version": "1.0", "status": "in_progress", "data": [1]}, path)
    info = ckptkit.load(path).info
    assert (info.version, info.status, info.legacy) == ("1.0", "in_progress", True)


def test_malicious_pickle_is_rejected_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"payload": _RunsCode()}, path)
    with pytest.raises(
        ckptkit.CheckpointIncompatibleError, match="allowlist"
    ) as caught:
        ckptkit.load(path)
    assert isinstance(caught.value, ckptkit.UnsafeCheckpointError)
    report = ckptkit.validate(path)
    assert (report.ok, report.kind) == (False, "incompatible")
    assert "convert" in report.reason
    assert not (tmp_path / "PWNED").exists()


def test_plain_safetensors_file_loads_as_legacy(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file(
        {"a": torch.ones(2), "b": torch.zeros(1)}, path, metadata={"x": "y"}
    )
    checkpoint = ckptkit.load(path)
    assert checkpoint.info.legacy
    assert checkpoint.info.version == "0.x"
    assert checkpoint.info.metadata == {"x": "y"}
    assert set(checkpoint.state) == {"a", "b"}
    assert ckptkit.validate(path).ok


def test_legacy_pickle_extra_safe_globals_are_explicit(tmp_path: Path) -> None:
    import argparse

    path = tmp_path / "cfg.pt"
    torch.save({"cfg": argparse.Namespace(layers=2)}, path)
    with pytest.raises(ckptkit.UnsafeCheckpointError):
        ckptkit.load(path)
    loaded = ckptkit.load(path, extra_safe_globals=[argparse.Namespace]).state
    assert loaded["cfg"].layers == 2
