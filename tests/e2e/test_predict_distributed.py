"""predict under torchrun (gloo on CPU): same outputs, resumable at another size."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ckptkit

from ..support.subprocess_runner import run_cli
from .predict_support import (
    APP,
    damage,
    make_input,
    predict_args,
    read_summary,
    run_app,
    write_fasta,
)

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
    assert sorted(i for part in by_rank for i in part) == list(
        range(1, summary["shards"] + 1)  # numbered as the files
    )
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
        int(path.name[6:11])  # numbered as the files, as the summary numbers them
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


# --- exit codes and crashes under --gpus and under torchrun ----------------------


def _no_launcher_dump(text: str) -> None:
    assert "Traceback" not in text
    assert "ChildFailedError" not in text


def test_gpus_flag_ends_with_the_runs_own_code_and_merges_the_logs(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    """A skipped record: exit 2 as from one process, not a launcher failure."""
    bad = write_fasta(tmp_path / "bad.fa", [("bad", "ACGT!!ACGT" * 5)])
    output = tmp_path / "partial"
    args = [*predict_args([sample, bad], output), "--gpus", "0,1"]
    result = run_app(args, env=_env(demo_cache), timeout_s=300)
    assert result.returncode == 2, result.stdout + result.stderr
    _no_launcher_dump(result.stdout + result.stderr)
    cells = (output / "records.tsv").read_text().splitlines()[-1].split("\t")
    assert (cells[2], cells[6]) == ("bad", "skipped")  # record_id, status
    log = (output / "virnucpro.log").read_text()
    assert "[rank 0] " in log
    assert "[rank 1] " in log
    assert "DEBUG [rank 1] rank 1: shard" in log
    assert (output / "logs" / "rank-1.log").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ranks_by_hand(args: list[str], cache: Path, size: int) -> list[int]:
    """Start ``size`` ranks as torchrun does (its environment) and their codes."""
    port = str(_free_port())
    jobs = [
        subprocess.Popen(
            [str(APP), *args],
            env={
                **os.environ,
                **_env(cache),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(size),
                "LOCAL_WORLD_SIZE": str(size),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for rank in range(size)
    ]
    return [job.wait(timeout=300) for job in jobs]


def test_a_damaged_checkpoint_under_ranks_gives_3_and_force_resume_recovers(
    tmp_path: Path, sample: Path, demo_cache: Path, single: Path
) -> None:
    """Damage that the ranks computing two shards find, not rank 0's planning."""
    output = tmp_path / "damaged"
    shutil.copytree(single, output)
    checkpoints = output / "checkpoints"
    for index in (1, 2):
        (checkpoints / f"shard-0000{index}.scores.ckpt").unlink()
        damage(checkpoints / f"shard-0000{index}.esm.ckpt")
    args = [*predict_args([sample], output), "--resume"]
    assert _ranks_by_hand(args, demo_cache, 2) == [3, 3]  # the user's own torchrun
    result = run_app([*args, "--gpus", "0,1"], env=_env(demo_cache), timeout_s=300)
    assert result.returncode == 3, result.stdout + result.stderr
    _no_launcher_dump(result.stdout + result.stderr)
    assert "shard-00001.esm.ckpt" in result.stderr
    assert "--force-resume" in result.stderr
    result = run_app(
        [*args, "--force-resume", "--gpus", "0,1"], env=_env(demo_cache), timeout_s=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_identical(output, single)
    assert len(list(checkpoints.glob("shard-*.esm.ckpt.quarantined-*"))) == 2


def test_a_rank_that_crashes_is_named_with_its_log(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    output = tmp_path / "crash"
    job = subprocess.Popen(
        [str(APP), *predict_args([sample], output), "--gpus", "0,1"],
        env={**os.environ, **_env(demo_cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim_pid = output / "logs" / "rank-1.pid"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        if victim_pid.exists() and victim_pid.read_text().strip():
            break
        time.sleep(0.05)
    assert job.poll() is None, "the job finished before a rank could be killed"
    os.kill(int(victim_pid.read_text()), signal.SIGKILL)
    _, stderr = job.communicate(timeout=240)
    assert job.returncode == 1, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    log = output / "logs" / "rank-1.log"
    assert line.startswith(
        f"error: rank 1 crashed (killed by SIGKILL); its log is {log}"
    )
    assert "Traceback" not in stderr
