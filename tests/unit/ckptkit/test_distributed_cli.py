"""``ckptkit inspect`` and ``validate`` name a sharded folder's format and shards."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import torch
from typer.testing import CliRunner

import ckptkit
import ckptkit.distributed as ckd
from ckptkit.cli import app

if TYPE_CHECKING:
    from pathlib import Path


def _sharded(tmp_path: Path) -> Path:
    folder = tmp_path / "ck"
    ckd.save(folder, {"w": torch.arange(6.0), "step": 3})  # one process, one shard
    return folder


def test_inspect_text_shows_the_shard_files(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    result = CliRunner().invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "format:       ckptkit sharded folder (container format 1)" in lines
    assert "saved by:     1 ranks, 1 shard files" in lines
    size = (folder / "shard-00000.ckpt").stat().st_size
    assert f"  shard-00000.ckpt  rank 0  {size} bytes" in lines
    assert lines.index("saved by:     1 ranks, 1 shard files") < next(
        i for i, line in enumerate(lines) if line.startswith("tensors:")
    )


def test_inspect_json_adds_world_size_and_shards(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    result = CliRunner().invoke(app, ["inspect", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    size = (folder / "shard-00000.ckpt").stat().st_size
    assert shown["format"] == "ckptkit-sharded"
    assert list(shown)[-2:] == ["world_size", "shards"]
    assert shown["world_size"] == 1
    assert shown["shards"] == [{"file": "shard-00000.ckpt", "rank": 0, "size": size}]


def test_validate_reports_the_sharded_format(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    assert ckptkit.validate(folder).to_json()["format"] == "ckptkit-sharded"
    result = CliRunner().invoke(app, ["validate", "--json", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)["checkpoints"]
    assert (entry["path"], entry["ok"], entry["format"]) == (
        str(folder),
        True,
        "ckptkit-sharded",
    )
