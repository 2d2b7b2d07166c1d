"""SIGKILL a training process during async saves: the folder stays restorable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import ckptkit
from ckptkit._file.format import parse_temp_name

from .manager_kill_child import KEEP_LAST, state_for

_CHILD = Path(__file__).with_name("manager_kill_child.py")
_ROUNDS = 4


def _run_until_killed(directory: Path, mode: str, rng: random.Random) -> int:
    """Start the child, kill it with SIGKILL; return the last step it reported."""
    env = {**os.environ, "PYTHONPATH": str(_CHILD.parent)}
    child = subprocess.Popen(
        [sys.executable, str(_CHILD), str(directory), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    last = -1
    try:
        line = child.stdout.readline()
        if mode == "midwrite":
            while line.strip() != "midwrite":
                assert line, "the child ended before its second write"
                last = int(line)
                line = child.stdout.readline()
        else:
            last = int(line)
            time.sleep(rng.uniform(0.0, 0.4))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    return last


def _check_restorable(directory: Path, reported: int) -> int:
    with ckptkit.CheckpointManager(directory, keep_last=KEEP_LAST) as mgr:
        steps = mgr.steps()
        assert steps, "no step survived"
        # Only a kill between a step's rename and the retention that follows
        # leaves one step more than keep_last.
        assert len(steps) <= KEEP_LAST + 1
        for step in steps:
            report = ckptkit.validate(directory / f"step-{step:012d}.ckpt")
            assert report.ok, report.reason
        # When save(n) returned, step n-1 was durable (one save in flight at most).
        assert mgr.latest() is not None
        assert mgr.latest() >= reported - 1  # type: ignore[operator]
        checkpoint = mgr.restore()  # a fallback warning would fail the test
    step = int(checkpoint.state["step"])
    assert step == mgr.latest()
    assert checkpoint.info.metadata["step"] == step
    expected = state_for(step)
    assert torch.equal(checkpoint.state["big"], expected["big"])
    assert torch.equal(checkpoint.state["small"][0], expected["small"][0])
    assert checkpoint.state["small"][1] == expected["small"][1]
    return step


def test_sigkill_during_async_saves_leaves_the_folder_restorable(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261130)
    restored = -1
    for round_index in range(_ROUNDS):
        mode = "midwrite" if round_index % 2 == 0 else "random"
        reported = _run_until_killed(tmp_path, mode, rng)
        temps = [p for p in tmp_path.iterdir() if parse_temp_name(p.name)]
        if mode == "midwrite":
            assert temps, "the kill should have left a half-written temporary file"
        step = _check_restorable(tmp_path, reported)
        # A midwrite round made its first write durable before stopping; a
        # random kill may come before any.
        assert step > restored if mode == "midwrite" else step >= restored
        restored = step
        # The next manager removed the killed writer's temporary file.
        assert not [p for p in tmp_path.iterdir() if parse_temp_name(p.name)]
    assert ckptkit.FailureLedger(tmp_path).entries() == []
