"""Folder boundaries: cleanup, save, migrate and validate_tree never touch a file
ckptkit did not write, and never follow a link out of the folder they were given.

(The manager's retention has its own tests; see test_manager.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import ckptkit
from ckptkit._file.format import temp_name

from ...support.checkpoint_zoo import DEAD_PID


def _state() -> dict[str, object]:
    return {"w": torch.ones(3)}


@pytest.mark.parametrize(
    "pid_field",
    ["99999999999999999999", "0", "007", str(2**31), "-5"],
    ids=["beyond-c-long", "zero", "leading-zeros", "beyond-pid_t", "negative"],
)
def test_cleanup_ignores_temp_like_names_with_absurd_fields(
    tmp_path: Path, pid_field: str
) -> None:
    """Not a name ckptkit writes: left alone, without an error."""
    odd = tmp_path / f".a.ckpt.0123456789ab.{pid_field}.ckptkit-tmp"
    odd.write_bytes(b"someone else's")
    assert ckptkit.cleanup(tmp_path) == []
    assert odd.read_bytes() == b"someone else's"


def test_cleanup_leaves_links_named_like_temp_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    (tmp_path / "run").mkdir()
    link = tmp_path / "run" / temp_name("a.ckpt", "0123456789ab", DEAD_PID)
    link.symlink_to(outside)
    assert ckptkit.cleanup(tmp_path / "run") == []
    assert link.is_symlink()
    assert outside.read_bytes() == b"keep"


def test_cleanup_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    stale = tmp_path / temp_name("a.ckpt", "0123456789ab", DEAD_PID)
    stale.write_bytes(b"partial")
    assert ckptkit.cleanup(tmp_path) == [stale]


def test_save_refuses_a_temp_file_name(tmp_path: Path) -> None:
    """cleanup would delete such a file: save does not write one."""
    target = tmp_path / temp_name("a.ckpt", "0123456789ab", os.getpid())
    with pytest.raises(ValueError, match="temporary files"):
        ckptkit.save(target, _state())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_folder_as_its_target(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder"):
        ckptkit.save(tmp_path, _state())
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_folder_names_the_folder_and_the_fix(
    tmp_path: Path,
) -> None:
    """The error used to name the temporary file, a path the user never gave."""
    missing = tmp_path / "runs" / "exp1"
    with pytest.raises(FileNotFoundError) as raised:
        ckptkit.save(missing / "model.ckpt", _state())
    error = raised.value
    assert error.filename == str(missing)
    assert "mkdir -p" in str(error)
    assert "ckptkit-tmp" not in str(error)
    assert not (tmp_path / "runs").exists()


def test_validate_tree_does_not_follow_a_link_to_a_folder_outside(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ckptkit.save(outside / "bad.ckpt", _state())
    (outside / "bad.ckpt").write_bytes(b"\x00" * 64)  # damaged
    run = tmp_path / "run"
    run.mkdir()
    ckptkit.save(run / "good.ckpt", _state())
    (run / "elsewhere").symlink_to(outside)
    tree = ckptkit.validate_tree([run], ledger="folder")
    assert [r.path.name for r in tree.reports] == ["good.ckpt"]
    assert tree.ok
    assert sorted(p.name for p in outside.iterdir()) == ["bad.ckpt"]


def test_validate_tree_records_a_linked_file_next_to_the_link(tmp_path: Path) -> None:
    """A link to a damaged file outside is checked (it is in the folder), and its
    failure is recorded in the folder given, never where the link leads."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "bad.ckpt").write_bytes(b"\x00" * 64)
    run = tmp_path / "run"
    run.mkdir()
    (run / "linked.ckpt").symlink_to(outside / "bad.ckpt")
    tree = ckptkit.validate_tree([run / "linked.ckpt"], ledger="folder")
    assert [r.ok for r in tree.reports] == [False]
    assert tree.ledger_paths == (run / "failed_checkpoints.txt",)
    assert sorted(p.name for p in outside.iterdir()) == ["bad.ckpt"]
