"""Each failure fault injection found, as a test named after it (each failed before
its fix)."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import ckptkit
from ckptkit._file.format import parse_temp_name

from .scenarios import SCHEMA, registry
from .seam import FAULTS, Injector, injected


def _fault(name: str) -> Any:
    return next(fault for fault in FAULTS if fault.name == name)


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if parse_temp_name(p.name)]


def test_ledger_close_failure_regression_releases_the_lock(tmp_path: Path) -> None:
    """A failing close left the descriptor open, and its flock held: the next
    read of the ledger in this process waited forever."""
    ledger = ckptkit.FailureLedger(tmp_path)
    with (
        injected(Injector(target=("close", 1), fault=_fault("EIO"))),
        pytest.raises(OSError, match="injected"),
    ):
        ledger.record("a.ckpt", "damaged")
    read: list[object] = []
    reader = threading.Thread(target=lambda: read.append(ledger.entries()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "reading the ledger waits for a lock never released"
    assert [e.path for e in read[0]] == ["a.ckpt"]  # type: ignore[attr-defined]


def test_ledger_partial_append_regression_is_cut_back(tmp_path: Path) -> None:
    """The disk filled inside a line: the part written stayed, a torn line."""
    ledger = ckptkit.FailureLedger(tmp_path)
    ledger.record("a.ckpt", "first")
    with (
        injected(Injector(target=("write", 1), fault=_fault("disk fills"))),
        pytest.raises(OSError, match="no progress"),
    ):
        ledger.record("b.ckpt", "a reason that does not fit")
    assert ledger.path.read_bytes().endswith(b"\n")
    assert [e.path for e in ledger.entries()] == ["a.ckpt"]
    assert ledger.malformed == []


def test_migrate_backup_regression_is_removed_when_its_directory_fsync_fails(
    tmp_path: Path,
) -> None:
    """The backup was made, then its folder fsync failed: the backup stayed, and
    every later migrate refused ("a backup ... already exists")."""
    target = tmp_path / "model.ckpt"
    ckptkit.save(target, {"w": torch.ones(2)}, schema=SCHEMA)
    before = target.read_bytes()
    failing = Injector(target=("fsync_directory", 1), fault=_fault("EIO"))
    with injected(failing), pytest.raises(OSError, match="injected"):
        ckptkit.migrate(target, registry())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]
    assert target.read_bytes() == before
    assert ckptkit.migrate(target, registry()).written  # the retry is not refused


def test_temp_file_left_by_a_failed_removal_regression_is_removed_by_cleanup(
    tmp_path: Path,
) -> None:
    """A write failed and so did removing its temporary file: cleanup in the same
    process kept it forever (its writer, this process, is alive)."""
    target = tmp_path / "model.ckpt"
    failing = Injector(target=("write", 1), fault=_fault("ENOSPC"))
    removal = Injector(target=("unlink", 1), fault=_fault("EIO"))
    with injected(failing), injected(removal), pytest.raises(OSError, match="space"):
        ckptkit.save(target, {"w": torch.ones(2)})
    assert len(_temp_files(tmp_path)) == 1
    ckptkit.cleanup(tmp_path)
    assert _temp_files(tmp_path) == []


def test_failed_temp_removal_regression_reports_the_first_error(
    tmp_path: Path,
) -> None:
    """The removal's own error used to replace the one that made the save fail."""
    failing = Injector(target=("write", 1), fault=_fault("ENOSPC"))
    removal = Injector(target=("unlink", 1), fault=_fault("EIO"))
    with (
        injected(failing),
        injected(removal),
        pytest.raises(OSError, match="space") as raised,
    ):
        ckptkit.save(tmp_path / "model.ckpt", {"w": torch.ones(2)})
    assert raised.value.errno == errno.ENOSPC


def test_migrate_onto_a_dangling_link_regression_is_refused(tmp_path: Path) -> None:
    """A link to nowhere does not "exist": migrate replaced it with its output."""
    source = tmp_path / "model.ckpt"
    ckptkit.save(source, {"w": torch.ones(2)}, schema=SCHEMA)
    link = tmp_path / "out.ckpt"
    link.symlink_to(tmp_path / "nowhere" / "file.ckpt")
    with pytest.raises(FileExistsError, match="output exists"):
        ckptkit.migrate(source, registry(), output=link)
    assert link.is_symlink()
    backup = tmp_path / "model.ckpt.v1.0.bak"
    backup.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError, match="backup"):
        ckptkit.migrate(source, registry())
    assert backup.readlink() == tmp_path / "elsewhere"
