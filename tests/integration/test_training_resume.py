"""Training k steps, saving, and resuming in a fresh process is bit-identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import ckptkit

_SCRIPT = Path(__file__).with_name("resume_training.py")


def _run(*args: object) -> None:
    subprocess.run(
        [sys.executable, str(_SCRIPT), *map(str, args)], check=True, timeout=120
    )


def test_resumed_training_equals_uninterrupted_training(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight.ckpt", tmp_path / "resumed.ckpt"
    _run(straight, 10)
    _run(resumed, 10, 4)
    assert ckptkit.inspect(resumed).status == "in_progress"
    _run(resumed, 10)
    expected = ckptkit.load(straight, verify="full").state
    actual = ckptkit.load(resumed, verify="full").state
    assert actual["step"] == expected["step"] == 10
    for name, tensor in expected["model"].items():
        assert torch.equal(actual["model"][name], tensor), name
    exp_state = expected["optimizer"]["state"]
    for index, slots in exp_state.items():
        for slot, value in slots.items():
            assert torch.equal(actual["optimizer"]["state"][index][slot], value)
    assert actual["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]
    assert actual["scheduler"] == expected["scheduler"]
