"""Classifying files by content and walking folders for checkpoints."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit._file.discovery import FileKind, classify_file, discover
from ckptkit._file.format import LEDGER_FILENAME

from ...support.checkpoint_zoo import build_zoo
from ...support.corrupt import flip_bit

if TYPE_CHECKING:
    from pathlib import Path


def _kinds(folder: Path) -> dict[str, FileKind]:
    return {
        str(path.relative_to(folder)): classify_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_zoo_files_are_classified_by_content_whatever_their_names(
    tmp_path: Path,
) -> None:
    zoo = build_zoo(tmp_path)
    kinds = _kinds(tmp_path)
    assert kinds["good.ckpt"] is FileKind.CKPTKIT
    assert kinds["weights.dat"] is FileKind.CKPTKIT
    assert kinds["plain.safetensors"] is FileKind.SAFETENSORS
    assert kinds["legacy.pt"] is FileKind.TORCH
    assert kinds["legacy_noext"] is FileKind.TORCH
    assert kinds["legacy_old.pth"] is FileKind.TORCH
    assert kinds["empty.ckpt"] is FileKind.EMPTY
    for name in zoo.not_checkpoints:
        assert kinds[name] is FileKind.OTHER, name
    for name in zoo.temporary:
        assert kinds[name] is FileKind.TEMPORARY, name
    for name in zoo.corrupted + zoo.incompatible:
        assert kinds[name].is_checkpoint, name


@pytest.mark.parametrize("byte", range(16))
def test_ckptkit_file_with_a_damaged_first_byte_is_still_a_checkpoint(
    tmp_path: Path, byte: int
) -> None:
    target = tmp_path / "x.bin"
    ckptkit.save(target, {"w": torch.ones(3)})
    flip_bit(target, byte * 8 + 1)
    assert classify_file(target) is FileKind.CKPTKIT


@pytest.mark.parametrize(
    "content",
    [
        b'plain text mentioning "ckptkit.format" in a note\n',
        b'{"ckptkit.format_version": "1"}',
        b"\x80\x04K\x01.",  # a pickle, but not one torch.save wrote
        b"PK\x03\x04" + b"\x00" * 40,  # a zip without data.pkl
        b"\x00" * 64,
    ],
)
def test_look_alikes_are_not_checkpoints(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "thing.ckpt"
    target.write_bytes(content)
    assert classify_file(target) is FileKind.OTHER


def test_empty_file_counts_as_checkpoint_only_by_a_checkpoint_suffix(
    tmp_path: Path,
) -> None:
    for name in ("a.ckpt", "a.pt", "a.PTH", "a.safetensors", "a.bin"):
        (tmp_path / name).write_bytes(b"")
        assert classify_file(tmp_path / name) is FileKind.EMPTY
    (tmp_path / "a.log").write_bytes(b"")
    assert classify_file(tmp_path / "a.log") is FileKind.OTHER


def test_discover_walks_recursively_and_skips_the_ledger(tmp_path: Path) -> None:
    zoo = build_zoo(tmp_path)
    (tmp_path / LEDGER_FILENAME).write_text("a|b|2025-01-01T00:00:00Z\n")
    found = discover([tmp_path])
    names = {str(p.relative_to(tmp_path)) for p in found.checkpoints}
    assert names == set(zoo.valid + zoo.corrupted + zoo.incompatible)
    assert {str(p.relative_to(tmp_path)) for p in found.not_checkpoints} == set(
        zoo.not_checkpoints
    )
    assert [str(p.relative_to(tmp_path)) for p in found.temporary] == list(
        zoo.temporary
    )
    assert found.errors == []


def test_discover_keeps_explicit_files_whatever_they_look_like(tmp_path: Path) -> None:
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    found = discover([note, tmp_path / "missing.ckpt", note])
    assert found.checkpoints == [note, tmp_path / "missing.ckpt"]


def test_discover_reports_a_folder_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover([tmp_path])
    assert len(found.errors) == 1
    assert str(locked) in found.errors[0]
    assert "Permission denied" in found.errors[0]


def test_discover_reports_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "latest.ckpt").symlink_to(tmp_path / "gone.ckpt")
    found = discover([tmp_path])
    assert found.checkpoints == []
    assert len(found.errors) == 1
    link, target = tmp_path / "latest.ckpt", tmp_path / "gone.ckpt"
    assert found.errors == [f"{link}: broken link to {target}; fix or remove it"]


def test_discover_orders_numbered_files_naturally(tmp_path: Path) -> None:
    for step in (10, 2, 1, 100):
        ckptkit.save(tmp_path / f"step-{step}.ckpt", {"step": step})
    found = discover([tmp_path])
    assert [p.name for p in found.checkpoints] == [
        "step-1.ckpt",
        "step-2.ckpt",
        "step-10.ckpt",
        "step-100.ckpt",
    ]
