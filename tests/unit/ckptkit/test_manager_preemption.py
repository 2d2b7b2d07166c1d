"""Preemption signal handling of CheckpointManager, in this process (issue 13 item 3).

The default action of SIGTERM ends the process, so the tests that let it happen
run in subprocesses (here one, and tests/integration/test_manager_preemption.py).
In this process the tests install a Python handler or SIG_IGN first, which the
manager chains to instead of ending anything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import torch

import ckptkit
from ckptkit._file.format import step_name


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    """Whatever a test installs for SIGTERM, pytest's handler comes back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("sigterm_restored")
def test_a_handler_installed_before_is_chained_after_the_save_in_flight(
    tmp_path: Path,
) -> None:
    calls: list[tuple[int, bool]] = []

    def users_handler(signum: int, frame: FrameType | None) -> None:
        del frame
        calls.append((signum, (tmp_path / step_name(1)).exists()))

    signal.signal(signal.SIGTERM, users_handler)
    mgr = ckptkit.CheckpointManager(tmp_path, async_save=True, handle_preemption=True)
    assert not mgr.preempted
    mgr.save(1, {"w": torch.arange(1 << 20)})  # likely still in flight
    signal.raise_signal(signal.SIGTERM)
    assert mgr.preempted
    # The user's handler ran once, when step 1 was already durable.
    assert calls == [(signal.SIGTERM, True)]
    mgr.save(2, {"w": 2})  # the user's handler decided: the manager goes on
    mgr.close()
    assert signal.getsignal(signal.SIGTERM) == users_handler
    assert ckptkit.CheckpointManager(tmp_path).steps() == [1, 2]


@pytest.mark.usefixtures("sigterm_restored")
def test_an_ignored_signal_only_sets_the_flag(tmp_path: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with ckptkit.CheckpointManager(tmp_path, handle_preemption=True) as mgr:
        signal.raise_signal(signal.SIGTERM)
        assert mgr.preempted
        mgr.save(1, {"x": 1})  # no deferred action: the process goes on
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


@pytest.mark.usefixtures("sigterm_restored")
def test_other_signals_can_be_chosen(tmp_path: Path) -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with ckptkit.CheckpointManager(
            tmp_path, handle_preemption=[signal.SIGUSR1]
        ) as mgr:
            assert signal.getsignal(signal.SIGTERM) == sigterm  # not asked for
            signal.raise_signal(signal.SIGUSR1)
            assert mgr.preempted
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def test_without_handle_preemption_no_handler_is_installed(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert signal.getsignal(signal.SIGTERM) == before
        assert not mgr.preempted


def test_handle_preemption_outside_the_main_thread_is_refused(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def open_manager() -> None:
        try:
            ckptkit.CheckpointManager(tmp_path, handle_preemption=True)
        except ValueError as error:
            errors.append(error)

    worker = threading.Thread(target=open_manager)
    worker.start()
    worker.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])


def test_an_unknown_signal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a signal"):
        ckptkit.CheckpointManager(tmp_path, handle_preemption=[12345])


def test_close_delivers_a_deferred_sigterm_once_the_save_is_durable(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        """
        import signal, sys, torch, ckptkit
        mgr = ckptkit.CheckpointManager(
            sys.argv[1], async_save=True, handle_preemption=True
        )
        mgr.save(7, {"w": torch.arange(4 << 20)})
        signal.raise_signal(signal.SIGTERM)
        print("preempted", mgr.preempted, flush=True)
        mgr.close()
        print("still alive", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGTERM
    assert done.stdout.split("\n")[0] == "preempted True"
    assert "still alive" not in done.stdout
    with ckptkit.CheckpointManager(tmp_path) as mgr:
        assert torch.equal(mgr.restore(7).state["w"], torch.arange(4 << 20))


def test_a_forked_child_ends_on_sigterm_at_once(tmp_path: Path) -> None:
    """A DataLoader worker inherits the handler, not the manager's duties."""
    script = textwrap.dedent(
        """
        import os, signal, sys, time, ckptkit
        mgr = ckptkit.CheckpointManager(sys.argv[1], handle_preemption=True)
        child = os.fork()
        if child == 0:
            signal.raise_signal(signal.SIGTERM)
            time.sleep(5)
            os._exit(0)  # not reached: SIGTERM's default action ended the child
        _, status = os.waitpid(child, 0)
        print(os.WIFSIGNALED(status) and os.WTERMSIG(status), mgr.preempted)
        mgr.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(int(signal.SIGTERM)), "False"]


def test_a_sharded_manager_refuses_handle_preemption_before_touching_the_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run"
    with pytest.raises(ValueError, match="handle_preemption is for single-file"):
        ckptkit.CheckpointManager(folder, sharded=True, handle_preemption=True)
    assert not folder.exists()
