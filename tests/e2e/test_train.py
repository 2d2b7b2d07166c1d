"""virnucpro-app train end to end: SIGKILL at random moments, resume, same weights."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import ckptkit
from virnucpro_app.models.classifier import load_classifier

from ..support.corrupt import flip_tensor_bit
from ..support.subprocess_runner import run_cli
from .predict_support import (
    coding_contig,
    demo_env,
    write_fasta,
)

#: Small inputs, several shards and slices per class, short epochs; a run to be
#: killed is slowed down a little (--batch-pause-ms changes no number) so that
#: kills land inside its epochs.
TRAIN_OPTIONS = (
    "--demo",
    "--model-type",
    "300",
    "--shard-size",
    "6",
    "--slice-size",
    "4",
    "--epochs",
    "6",
    "--patience",
    "3",
    "--batch-size",
    "4",
    "--lr",
    "0.01",
    "--no-progress",
)
#: Only runs that get killed are slowed down.
SLOW = ("--batch-pause-ms", "40")


def _contigs(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    records = [
        (f"c{seed}_{i}", coding_contig(rng, rng.randint(600, 1200))) for i in range(6)
    ]
    return write_fasta(path, records)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("train-input")
    return _contigs(folder / "virus.fa", 1), _contigs(folder / "host.fa", 2)


def _args(inputs: tuple[Path, Path], output: Path, *extra: str) -> list[str]:
    virus, host = inputs
    return [
        "train",
        "--virus",
        str(virus),
        "--host",
        str(host),
        "--output",
        str(output),
        *TRAIN_OPTIONS,
        *extra,
    ]


def _train(
    inputs: tuple[Path, Path], output: Path, cache: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli("virnucpro_app", _args(inputs, output, *extra), env=demo_env(cache))


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
    inputs: tuple[Path, Path],
    demo_cache: Path,
) -> Path:
    """One uninterrupted training run that the others are compared with."""
    output = tmp_path_factory.mktemp("reference") / "classifier.ckpt"
    result = _train(inputs, output, demo_cache)
    assert result.returncode == 0, result.stderr
    return output


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = ckptkit.load(path, verify="full").state[
        "state_dict"
    ]
    return state


def _steps(train_dir: Path) -> list[int]:
    return sorted(int(p.name[5:17]) for p in train_dir.glob("step-*.ckpt"))


def _kill_when(
    child: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    delay_s: float,
    timeout_s: float = 60,
) -> None:
    """SIGKILL ``child`` ``delay_s`` after ``ready()`` holds; it must still run."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert child.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.02)
    time.sleep(delay_s)
    assert child.poll() is None, "the run ended before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()


def test_killed_training_resumes_to_the_uninterrupted_classifier(
    tmp_path: Path, inputs: tuple[Path, Path], demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "killed" / "classifier.ckpt"
    folder = tmp_path / "killed" / "classifier.training"
    features, train_dir = folder / "features", folder / "train"
    env = {**os.environ, **demo_env(demo_cache)}
    command = [
        sys.executable,
        "-m",
        "virnucpro_app",
        *_args(inputs, output, "--resume", *SLOW),
    ]
    rng = random.Random(3)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    # 1: during feature extraction (models loading, shards being embedded)
    _kill_when(
        start(),
        (features / "virus/checkpoints/manifest.ckpt").exists,
        rng.uniform(0, 2),
    )
    assert not _steps(train_dir), "the first kill came after the features"
    # 2: during training, after a first epoch checkpoint
    _kill_when(start(), lambda: bool(_steps(train_dir)), rng.uniform(0, 0.4))
    assert not output.exists()
    seen = _steps(train_dir)
    assert seen, "no kill landed during training"
    # 3: during training again, at least one epoch later (maybe during a save)
    _kill_when(
        start(),
        lambda: bool(_steps(train_dir)) and _steps(train_dir)[-1] > seen[-1],
        rng.uniform(0, 0.3),
    )
    result = _train(inputs, output, demo_cache, "--resume")
    assert result.returncode == 0, result.stderr
    assert "resuming training after epoch" in result.stderr
    expected, actual = _tensors(reference), _tensors(output)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
    summary = json.loads((folder / "train_summary.json").read_text())
    assert summary["resumed_from_epoch"] > seen[-1]
    assert summary["features"]["virus"]["computed_frames"] == {"dnabert": 0, "esm": 0}


def test_summary_and_classifier_metadata_describe_the_training(
    reference: Path,
) -> None:
    summary = json.loads(
        (reference.with_name("classifier.training") / "train_summary.json").read_text()
    )
    history = summary["history"]
    assert [e["epoch"] for e in history] == list(range(1, summary["epochs_run"] + 1))
    losses = [e["val_loss"] for e in history]
    assert summary["best_epoch"] == 1 + losses.index(min(losses))
    for key in ("loss", "accuracy", "precision", "recall", "f1", "roc_auc"):
        assert key in history[0]
    assert summary["recipe"]["lr"] == 0.01
    assert summary["split"]["train"] + summary["split"]["val"] == (
        summary["features"]["virus"]["frames"] + summary["features"]["host"]["frames"]
    )
    classifier = load_classifier(reference)
    assert classifier.chunk_size == 300
    assert classifier.metadata["training"]["best_epoch"] == summary["best_epoch"]
    assert "virnucpro_demo" in classifier.metadata


def test_a_used_checkpoint_folder_needs_resume_or_force(
    tmp_path: Path, inputs: tuple[Path, Path], demo_cache: Path, reference: Path
) -> None:
    folder = reference.with_name("classifier.training")
    result = _train(
        inputs, tmp_path / "other.ckpt", demo_cache, "--checkpoint-dir", str(folder)
    )
    assert result.returncode == 1
    assert "--resume" in result.stderr
    assert "--force" in result.stderr


def test_damaged_epoch_checkpoints_stop_with_exit_3_and_force_resume_retrains(
    tmp_path: Path, inputs: tuple[Path, Path], demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "classifier.ckpt"
    folder = tmp_path / "classifier.training"
    shutil.copytree(reference.with_name("classifier.training"), folder)
    for step in (folder / "train").glob("step-*.ckpt"):
        flip_tensor_bit(step)  # tensor bytes (the skeleton is the last entry)
    result = _train(inputs, output, demo_cache, "--resume")
    assert result.returncode == 3
    assert "--force-resume" in result.stderr
    result = _train(inputs, output, demo_cache, "--resume", "--force-resume")
    assert result.returncode == 0, result.stderr
    assert list(folder.glob("train.quarantined-*"))
    expected, actual = _tensors(reference), _tensors(output)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
