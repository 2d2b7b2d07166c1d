"""SIGTERM at random moments of a training loop with async saves (issue 13 item 3).

SIGTERM (what Slurm, Kubernetes and spot instances send) used to end the process
in the middle of an asynchronous save: the step in flight was lost and its
temporary file stayed. With ``handle_preemption=True`` the save in flight is
finished, the loop takes one last save, and only then does the process end, as
SIGTERM would have ended it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ckptkit
from ckptkit._file.format import MANAGER_LOCK_FILENAME, parse_temp_name

from .manager_preempt_child import KEEP_LAST, state_for

_CHILD = Path(__file__).with_name("manager_preempt_child.py")
_ROUNDS = 2


def _preempt(directory: Path, mode: str, delay_s: float) -> tuple[int, list[str]]:
    """Start the child, SIGTERM it ``delay_s`` after it is ready; its exit and lines."""
    with subprocess.Popen(
        [sys.executable, str(_CHILD), str(directory), mode],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(delay_s)
            child.send_signal(signal.SIGTERM)
            out, _ = child.communicate(timeout=120)
        finally:
            child.kill()
    return child.returncode, out.split()


def _check_folder(directory: Path, expected_step: int) -> None:
    # Before any new manager cleans up: the killed process left nothing behind.
    assert not [p for p in directory.iterdir() if parse_temp_name(p.name)]
    assert not (directory / MANAGER_LOCK_FILENAME).exists()
    with ckptkit.CheckpointManager(directory, keep_last=KEEP_LAST) as mgr:
        assert mgr.latest() == expected_step
        state = mgr.restore().state  # a fallback warning would fail the test
    expected = state_for(expected_step)
    assert state["step"] == expected_step
    assert torch.equal(state["big"], expected["big"])
    assert state["history"] == expected["history"]
    assert ckptkit.FailureLedger(directory).entries() == []


@pytest.mark.parametrize("mode", ["aware", "unaware"])
def test_sigterm_at_random_moments_loses_no_step_and_leaves_no_temp_file(
    tmp_path: Path, mode: str
) -> None:
    rng = random.Random(f"preemption-{mode}")
    first_step = 0  # of each round: the child resumes after the last durable step
    for _ in range(_ROUNDS):
        code, lines = _preempt(tmp_path, mode, rng.uniform(0.0, 0.6))
        assert code == -signal.SIGTERM, lines  # ended as SIGTERM ends a process
        assert "still alive" not in lines
        final = lines.index("final") if "final" in lines else len(lines)
        reported = [int(x) for x in lines[:final] if x.isdigit()]
        # Every save that returned is durable, and so is one more: the save the
        # loop took after the signal (the aware loop as soon as it saw the flag,
        # printing "final N"; otherwise the loop's next save, which ended it).
        last = reported[-1] + 1 if reported else first_step
        if final < len(lines):
            assert mode == "aware"
            assert lines[final:] == ["final", str(last)]
        _check_folder(tmp_path, last)
        first_step = last + 1
