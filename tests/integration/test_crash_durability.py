"""SIGKILL a writer at random moments: the checkpoint is always whole, old or new."""

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

from .crash_writer import state_for

_WRITER = Path(__file__).with_name("crash_writer.py")
_ROUNDS = 12


def _check_whole(path: Path) -> int:
    checkpoint = ckptkit.load(path, verify="full")
    generation = checkpoint.state["generation"]
    expected = state_for(generation)
    assert torch.equal(checkpoint.state["big"], expected["big"])  # type: ignore[arg-type]
    assert torch.equal(checkpoint.state["small"][0], expected["small"][0])  # type: ignore[index]
    assert checkpoint.state["small"][1] == {"g": str(generation)}
    return int(generation)


def test_sigkill_during_overwrites_leaves_a_whole_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "live.ckpt"
    rng = random.Random(20261129)
    env = {**os.environ, "PYTHONPATH": str(_WRITER.parent)}
    generation = 0
    for _ in range(_ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(_WRITER), str(target), str(generation)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        child.stdout.readline()  # at least one complete save in this round
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        seen = _check_whole(target)
        assert seen >= generation
        generation = seen + 1
    leftovers = [p for p in tmp_path.iterdir() if parse_temp_name(p.name)]
    removed = ckptkit.cleanup(tmp_path)
    assert sorted(removed) == sorted(leftovers)
    assert [p.name for p in tmp_path.iterdir()] == ["live.ckpt"]


def test_concurrent_writers_leave_one_whole_state(tmp_path: Path) -> None:
    target = tmp_path / "shared.ckpt"
    env = {**os.environ, "PYTHONPATH": str(_WRITER.parent)}
    writers = [
        subprocess.Popen(
            [sys.executable, str(_WRITER), str(target), str(start)],
            stdout=subprocess.PIPE,
            env=env,
        )
        for start in (0, 1_000_000)
    ]
    for writer in writers:
        assert writer.stdout is not None
        writer.stdout.readline()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        _check_whole(target)  # readers never see a mix while both write
    for writer in writers:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert writer.stdout is not None
        writer.stdout.close()
    _check_whole(target)
