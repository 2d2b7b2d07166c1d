"""predict under torchrun (gloo on CPU): same outputs, resumable at another size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ckptkit

from ..support.subprocess_runner import run_cli
from .predict_support import make_input, predict_args, read_summary

OUTPUT_FILES = (
    "prediction_results.txt",
    "prediction_results_highestscore.csv",
    "records.tsv",
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_input(tmp_path_factory.mktemp("input") / "contigs.fa", seed=3, count=7)


def _env(cache: Path) -> dict[str, str]:
    # One thread per process everywhere: matrix products then add up in the
    # same order in every process, so outputs are equal to the last bit.
    return {"VIRNUCPRO_DEMO_CACHE": str(cache), "OMP_NUM_THREADS": "1"}


def _torchrun(nproc: int, args: list[str], cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "virnucpro_app",
            *args,
        ],
        env={**os.environ, **_env(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def single(
    tmp_path_factory: pytest.TempPathFactory, sample: Path, demo_cache: Path
) -> Path:
    output = tmp_path_factory.mktemp("single") / "run"
    result = run_cli(
        "virnucpro_app", predict_args([sample], output), env=_env(demo_cache)
    )
    assert result.returncode == 0, result.stderr
    return output


def _assert_identical(actual: Path, expected: Path) -> None:
    for name in OUTPUT_FILES:
        assert (actual / name).read_bytes() == (expected / name).read_bytes(), name


def test_two_gpus_flag_launches_ranks_with_identical_outputs(
    tmp_path: Path, sample: Path, demo_cache: Path, single: Path
) -> None:
    output = tmp_path / "two"
    args = [*predict_args([sample], output), "--gpus", "0,1"]
    result = run_cli("virnucpro_app", args, env=_env(demo_cache), timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_identical(output, single)
    summary = read_summary(output)
    assert summary["world_size"] == 2
    by_rank = summary["computed_shards_by_rank"]
    assert all(by_rank)  # both ranks worked
    assert sorted(i for part in by_rank for i in part) == list(range(summary["shards"]))
    assert (output / "logs" / "rank-1.log").exists()


def test_three_ranks_killed_one_resumed_with_two(
    tmp_path: Path, sample: Path, demo_cache: Path, single: Path
) -> None:
    output = tmp_path / "three"
    args = predict_args([sample], output)
    job = _torchrun(3, args, demo_cache)
    scores = output / "checkpoints"
    victim_pid = output / "logs" / "rank-1.pid"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        if victim_pid.exists() and len(list(scores.glob("shard-*.scores.ckpt"))) >= 2:
            break
        time.sleep(0.05)
    assert job.poll() is None, "the job finished before a rank could be killed"
    os.kill(int(victim_pid.read_text()), signal.SIGKILL)
    log, _ = job.communicate(timeout=240)
    assert job.returncode != 0, log  # the job fails instead of hanging
    finished = {
        int(path.name[6:11]) - 1
        for path in scores.glob("shard-*.scores.ckpt")
        if ckptkit.validate(path).ok
    }
    resumed = _torchrun(2, [*args, "--resume"], demo_cache)
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    _assert_identical(output, single)
    summary = read_summary(output)
    assert summary["world_size"] == 2
    assert not set(summary["computed_shards"]) & finished
    assert len(summary["computed_shards"]) == len(set(summary["computed_shards"]))


def test_resume_of_a_distributed_run_in_one_process(
    tmp_path: Path, sample: Path, demo_cache: Path, single: Path
) -> None:
    output = tmp_path / "once-more"
    job = _torchrun(2, predict_args([sample], output), demo_cache)
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log
    result = run_cli(
        "virnucpro_app",
        [*predict_args([sample], output), "--resume"],
        env=_env(demo_cache),
    )
    assert result.returncode == 0, result.stderr
    assert read_summary(output)["computed_shards"] == []
    _assert_identical(output, single)
