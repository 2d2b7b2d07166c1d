"""One writer per folder, across real processes (issue 13 item 2).

Two processes on one folder used to overwrite each other's steps, or fail the
other with a false "failed validation right after writing" and a false ledger
line. Now the second manager is refused at construction, naming the holder, and
a holder killed with SIGKILL does not block the next run on this host.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import ckptkit
from ckptkit._file.format import MANAGER_LOCK_FILENAME

_CHILD = Path(__file__).with_name("manager_lock_child.py")


def _start(directory: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(_CHILD), str(directory), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _holding(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"


def test_a_manager_in_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    with _start(tmp_path, "hold") as holder:
        try:
            _holding(holder)
            with pytest.raises(ckptkit.FolderLockedError) as caught:
                ckptkit.CheckpointManager(tmp_path)
            message = str(caught.value)
            assert f"process {holder.pid} on host {socket.gethostname()}" in message
            assert "(this process)" not in message
            holder.communicate("\n", timeout=120)
            assert holder.returncode == 0
        finally:
            holder.kill()
    with ckptkit.CheckpointManager(tmp_path) as mgr:  # released by close()
        assert mgr.steps() == [0]
    assert not (tmp_path / MANAGER_LOCK_FILENAME).exists()


def test_a_sigkilled_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    with _start(tmp_path, "hold") as holder:
        try:
            _holding(holder)
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
    assert (tmp_path / MANAGER_LOCK_FILENAME).exists()  # left behind, stale
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.restore().state["w"].tolist() == [0.0] * 4
        mgr.save(1, {"w": 1})


def test_a_second_training_process_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    with _start(tmp_path, "hold") as holder:
        try:
            _holding(holder)
            with _start(tmp_path, "train") as second:
                out, _ = second.communicate(timeout=240)
            assert second.returncode == 3, out
            assert out.startswith("refused: ")
            assert f"process {holder.pid}" in out
            holder.communicate("\n", timeout=120)
        finally:
            holder.kill()
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert mgr.steps() == [0]  # the holder's step only: nothing overwritten
    assert ckptkit.FailureLedger(tmp_path).entries() == []
    with _start(tmp_path, "train") as again:  # the folder is free again
        out, _ = again.communicate(timeout=240)
    assert (again.returncode, out.strip()) == (0, "done")
