"""Real signals throughout a save and a load: interrupted calls are retried.

A second thread sends SIGUSR1 to the main thread every half millisecond while it
saves and loads; the handler returns normally, so any system call the signal
interrupts (EINTR) is run again (by Python, PEP 475, and by the seam). The
injected-EINTR cases in test_fault_injection.py cover every call point; this
shows the same with the kernel's own signals.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def _under_signals(work: Callable[[], object]) -> tuple[object, int]:
    """Run ``work`` while signals rain on this thread; return its result, count."""
    received = 0

    def handler(_signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1

    target = threading.get_ident()
    stop = threading.Event()

    def sender() -> None:
        while not stop.is_set():
            signal.pthread_kill(target, signal.SIGUSR1)
            time.sleep(0.0005)

    previous = signal.signal(signal.SIGUSR1, handler)
    thread = threading.Thread(target=sender, name="signal-sender")
    thread.start()
    try:
        result = work()
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
    return result, received


def test_save_and_load_complete_under_a_rain_of_signals(tmp_path: Path) -> None:
    state = {
        "big": torch.arange(6_000_000, dtype=torch.float32),  # 24 MB
        "parts": [torch.full((1000,), float(i)) for i in range(50)],
        "step": 7,
    }
    target = tmp_path / "model.ckpt"

    def save_and_load() -> object:
        ckptkit.save(target, state)
        return ckptkit.load(target, verify="full").state

    loaded, received = _under_signals(save_and_load)
    assert received > 0  # the signals did arrive while the work ran
    assert isinstance(loaded, dict)
    assert torch.equal(loaded["big"], state["big"])
    assert all(
        torch.equal(a, b) for a, b in zip(loaded["parts"], state["parts"], strict=True)
    )
    assert loaded["step"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]
