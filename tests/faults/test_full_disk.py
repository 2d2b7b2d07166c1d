"""A real full disk: a small tmpfs, filled up, under save, the manager and the ledger.

Mounting needs root (or CAP_SYS_ADMIN); where ``mount`` fails the tests skip
with the reason it gave. Everything else about them is real: the kernel's own
ENOSPC, short writes at the page where the disk ends.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit._file.format import parse_temp_name, step_name

if TYPE_CHECKING:
    from collections.abc import Iterator

_DISK_BYTES = 2 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test (skipped where mounting is refused)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no mount command: a real full disk cannot be made here")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={_DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.stdout}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def _fill(disk: Path, leave_bytes: int) -> Path:
    """Take all free space but ``leave_bytes`` (rounded down to whole pages)."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))
        handle.flush()
        os.fsync(handle.fileno())
    return filler


def _state(fill: float, numel: int) -> dict[str, object]:
    return {"w": torch.full((numel,), fill), "step": int(fill)}


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if parse_temp_name(p.name)]


def test_save_on_a_full_disk_raises_and_keeps_the_old_file(small_disk: Path) -> None:
    target = small_disk / "model.ckpt"
    ckptkit.save(target, _state(1.0, 50_000))
    before = target.read_bytes()
    _fill(small_disk, leave_bytes=64 << 10)
    with pytest.raises(OSError, match="No space") as raised:
        ckptkit.save(target, _state(2.0, 100_000))  # 400 KB into 64 KB
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert _temp_files(small_disk) == []
    assert ckptkit.load(target, verify="full").state["step"] == 1


def test_manager_resave_on_a_full_disk_keeps_its_only_copy(small_disk: Path) -> None:
    with ckptkit.CheckpointManager(small_disk, keep_last=1) as manager:
        manager.save(1, _state(1.0, 50_000))
        before = (small_disk / step_name(1)).read_bytes()
        _fill(small_disk, leave_bytes=64 << 10)
        with pytest.raises(OSError, match="No space"):
            manager.save(1, _state(2.0, 100_000))
    assert (small_disk / step_name(1)).read_bytes() == before
    assert _temp_files(small_disk) == []
    with ckptkit.CheckpointManager(small_disk) as manager:
        assert manager.restore().state["step"] == 1


def test_ledger_record_on_a_full_disk_leaves_whole_lines(small_disk: Path) -> None:
    """The disk ends inside the line: the kernel takes a part, then says ENOSPC."""
    ledger = ckptkit.FailureLedger(small_disk)
    ledger.record("a.ckpt", "first")
    filler = _fill(small_disk, leave_bytes=0)
    # Free exactly one page beyond the ledger's: a long reason cannot fit.
    with filler.open("r+b") as handle:
        handle.truncate(max(filler.stat().st_size - 4096, 0))
    with pytest.raises(OSError, match="No space") as raised:
        ledger.record("b.ckpt", "x" * 20_000)
    assert raised.value.errno == errno.ENOSPC
    assert ledger.path.read_bytes().endswith(b"\n")
    assert [e.path for e in ledger.entries()] == ["a.ckpt"]
    assert ledger.malformed == []
