"""--force-resume recovers a damaged checkpoint of any stage; each file is read once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ckptkit

from .predict_support import (
    assert_same_outputs,
    damage,
    demo_env,
    predict_args,
    read_summary,
    run_predict,
)

HERE = Path(__file__).resolve().parent
SHARDS = 3  # the session's sample: 19 frames in shards of 7


def _stage(index: int, stage: str) -> str:
    return f"shard-{index:05d}.{stage}.ckpt"


def _embeddings(path: Path) -> object:
    return ckptkit.load(path, verify="full").state["embeddings"]


def test_force_resume_recovers_damage_in_every_stage_recomputing_only_that(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    """prepared, frames, both embeddings and scores damaged at once, in three shards.

    Each damaged file is set aside (renamed, kept) and exactly its work is redone:
    the prepare stage (same frames: their files are kept), shard 1's frames and
    scores, shard 2's DNABERT-S and shard 3's ESM-2 embeddings. The scores of
    shards 2 and 3 are kept because the recomputed embeddings are identical.
    """
    output = tmp_path / "damaged"
    shutil.copytree(reference, output)
    checkpoints = output / "checkpoints"
    victims = [
        "prepared.ckpt",
        _stage(1, "frames"),
        _stage(1, "scores"),
        _stage(2, "dnabert"),
        _stage(3, "esm"),
    ]
    damaged = {name: damage(checkpoints / name) for name in victims}
    untouched = [
        _stage(2, "frames"),
        _stage(3, "frames"),
        _stage(1, "dnabert"),
        _stage(3, "dnabert"),
        _stage(1, "esm"),
        _stage(2, "esm"),
        _stage(2, "scores"),
        _stage(3, "scores"),
    ]
    result = run_predict([sample], output, demo_cache, "--resume")
    assert result.returncode == 3, result.stderr
    assert str(checkpoints / "prepared.ckpt") in result.stderr
    assert "--force-resume" in result.stderr

    result = run_predict([sample], output, demo_cache, "--resume", "--force-resume")
    assert result.returncode == 0, result.stderr
    assert_same_outputs(output, reference)
    assert (output / "records.tsv").read_bytes() == (
        reference / "records.tsv"
    ).read_bytes()
    for name, data in damaged.items():
        (kept,) = checkpoints.glob(f"{name}.quarantined-*")
        assert kept.read_bytes() == data, name
        assert ckptkit.validate(checkpoints / name).ok, name
    for name in untouched:
        expected = (reference / "checkpoints" / name).read_bytes()
        assert (checkpoints / name).read_bytes() == expected, name
    for name in (_stage(2, "dnabert"), _stage(3, "esm")):
        recomputed = _embeddings(checkpoints / name)
        assert recomputed.equal(_embeddings(reference / "checkpoints" / name))
    summary = read_summary(output)
    assert summary["computed_frames"] == {"dnabert": 7, "esm": 5}
    assert summary["computed_shards"] == [1, 2, 3]
    assert len(summary["checkpoints"]["quarantined"]) == len(victims)
    ledger = [Path(e.path).name for e in ckptkit.FailureLedger(checkpoints).entries()]
    assert set(victims) <= set(ledger)


def test_force_resume_after_a_damaged_manifest_recomputes_everything(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "no-manifest"
    shutil.copytree(reference, output)
    damage(output / "checkpoints" / "manifest.ckpt")
    result = run_predict([sample], output, demo_cache, "--resume")
    assert result.returncode == 3, result.stderr
    result = run_predict([sample], output, demo_cache, "--resume", "--force-resume")
    assert result.returncode == 0, result.stderr
    assert_same_outputs(output, reference)
    summary = read_summary(output)
    assert summary["computed_shards"] == list(range(1, SHARDS + 1))
    assert summary["computed_frames"] == {"dnabert": 19, "esm": 19}
    # the manifest and the 13 checkpoints that depended on it, all kept
    assert len(list((output / "checkpoints").glob("*.quarantined-*"))) == 14


def test_resume_reads_each_checkpoint_once_and_counts_files_not_loads(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    assert read_summary(reference)["checkpoints"]["reused_valid"] == 0  # a fresh run
    output = tmp_path / "again"
    shutil.copytree(reference, output)
    counts_path = tmp_path / "reads.json"
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "count_reads.py"),
            str(counts_path),
            *predict_args([sample], output, "--resume"),
        ],
        env={**os.environ, **demo_env(demo_cache)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reads = {  # the run's checkpoints (the classifier file is read too)
        Path(path).name: count
        for path, count in json.loads(counts_path.read_text()).items()
        if Path(path).parent == output / "checkpoints"
    }
    checkpoints = sorted((output / "checkpoints").glob("*.ckpt"))
    stage_files = [p for p in checkpoints if p.name != "manifest.ckpt"]
    assert len(stage_files) == 1 + 4 * SHARDS
    assert reads == {path.name: 1 for path in checkpoints}
    summary = read_summary(output)
    assert summary["checkpoints"]["reused_valid"] == len(stage_files)
    assert summary["computed_shards"] == []
