"""virnucpro-app predict end to end, through the CLI in subprocesses."""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import torch

import ckptkit
from virnucpro_app.demo import make_demo_models
from virnucpro_app.models.classifier import load_classifier
from virnucpro_app.report import chunk_id_of

from .predict_support import (
    assert_same_outputs,
    damage,
    read_consensus,
    read_predictions,
    read_summary,
    run_predict,
    start_predict,
    write_fasta,
)


def test_outputs_agree_with_the_classifier_applied_to_the_embeddings(
    reference: Path, demo_cache: Path
) -> None:
    predictions = read_predictions(reference)
    summary = read_summary(reference)
    assert summary["shards"] >= 3  # several shards, several slices each
    classifier = load_classifier(demo_cache / "classifier-300bp-demo.ckpt")
    seen = []
    for index in range(int(summary["shards"])):  # type: ignore[call-overload]
        stem = reference / "checkpoints" / f"shard-{index + 1:05d}"
        dnabert = ckptkit.load(f"{stem}.dnabert.ckpt", verify="full").state
        esm = ckptkit.load(f"{stem}.esm.ckpt", verify="full").state
        assert dnabert["ids"] == esm["ids"]
        scores = classifier.scores(
            torch.cat([dnabert["embeddings"], esm["embeddings"]], 1)
        )
        for frame_id, (others, virus) in zip(
            dnabert["ids"], scores.tolist(), strict=True
        ):
            row = predictions[frame_id]
            assert abs(row.score1 - others) <= 1e-6
            assert abs(row.score2 - virus) <= 1e-6
            assert row.label == ("virus" if virus > others else "others")
            seen.append(frame_id)
    assert seen == list(predictions)


def test_consensus_is_per_chunk_max_rule_sorted(reference: Path) -> None:
    predictions = read_predictions(reference)
    best: dict[str, tuple[float, float]] = {}
    for frame_id, row in predictions.items():
        others, virus = best.get(chunk_id_of(frame_id), (0.0, 0.0))
        best[chunk_id_of(frame_id)] = (max(others, row.score1), max(virus, row.score2))
    expected = [
        (cid, str(virus >= others)) for cid, (others, virus) in sorted(best.items())
    ]
    assert read_consensus(reference) == expected


def test_every_record_is_accounted_for(reference: Path, sample: Path) -> None:
    ids = [
        line[1:].split()[0]
        for line in sample.read_text().splitlines()
        if line.startswith(">")
    ]
    rows = (reference / "records.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[2] for row in rows] == ids
    summary = read_summary(reference)
    assert sum(summary["records"].values()) == len(ids)  # type: ignore[attr-defined]


def test_killed_runs_resume_to_the_uninterrupted_outputs(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "killed"
    rng = random.Random(11)
    finished_before_last: set[int] = set()
    for _ in range(4):
        child = start_predict([sample], output, demo_cache, "--resume")
        time.sleep(rng.uniform(1.0, 7.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
    checkpoints = output / "checkpoints"
    for path in checkpoints.glob("shard-*.scores.ckpt"):
        if ckptkit.validate(path).ok:
            finished_before_last.add(int(path.name[6:11]))  # numbered as the files
    result = run_predict([sample], output, demo_cache, "--resume")
    assert result.returncode == 0, result.stderr
    assert_same_outputs(output, reference)
    computed = set(read_summary(output)["computed_shards"])  # type: ignore[call-overload]
    assert not computed & finished_before_last
    assert "found" in result.stderr


def test_resume_of_a_finished_run_recomputes_nothing(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "again"
    shutil.copytree(reference, output)
    (output / "prediction_results.txt").unlink()
    result = run_predict(
        [sample], output, demo_cache, "--resume", "--tokens-per-batch", "64"
    )
    assert result.returncode == 0, result.stderr
    assert read_summary(output)["computed_shards"] == []
    assert_same_outputs(output, reference)


def test_flipped_byte_stops_with_exit_3_and_force_resume_recovers(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "damaged"
    shutil.copytree(reference, output)
    victim = output / "checkpoints" / "shard-00002.esm.ckpt"
    data = damage(victim)
    result = run_predict([sample], output, demo_cache, "--resume")
    assert result.returncode == 3, result.stderr
    assert str(victim) in result.stderr
    assert "--force-resume" in result.stderr
    ledger = ckptkit.FailureLedger(output / "checkpoints").entries()
    assert [Path(e.path) for e in ledger] == [victim]
    result = run_predict([sample], output, demo_cache, "--resume", "--force-resume")
    assert result.returncode == 0, result.stderr
    assert_same_outputs(output, reference)
    quarantined = list(
        (output / "checkpoints").glob("shard-00002.esm.ckpt.quarantined-*")
    )
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == bytes(data)
    assert read_summary(output)["computed_shards"] == [2]  # numbered as the files


def test_changed_input_or_model_is_refused_but_batch_size_is_not(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "changed"
    shutil.copytree(reference, output)
    changed_input = tmp_path / "contigs.fa"
    changed_input.write_text(sample.read_text().replace("contig1 ", "contig1x "))
    result = run_predict([changed_input], output, demo_cache, "--resume")
    assert result.returncode == 1
    assert "input contigs.fa changed" in result.stderr
    other_models = tmp_path / "other-models"
    make_demo_models(other_models, seed=5)
    (other_models / ".complete").write_text("")
    result = run_predict([sample], output, other_models, "--resume")
    assert result.returncode == 1
    assert "DNABERT-S model changed" in result.stderr
    result = run_predict(
        [sample], output, demo_cache, "--resume", "--tokens-per-batch", "33"
    )
    assert result.returncode == 0, result.stderr


def test_non_empty_output_needs_resume_or_force(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    output = tmp_path / "busy"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    result = run_predict([sample], output, demo_cache)
    assert result.returncode == 1
    assert "--resume" in result.stderr
    assert "--force" in result.stderr
    fresh = tmp_path / "fresh"
    result = run_predict([sample], fresh, demo_cache, "--resume")  # no run yet: starts
    assert result.returncode == 0, result.stderr


def test_skipped_records_give_partial_exit_2(tmp_path: Path, demo_cache: Path) -> None:
    source = write_fasta(
        tmp_path / "mixed.fa",
        [("good", "ATG" + "GCT" * 200), ("bad", "ACGT!!ACGT" * 10), ("empty", "")],
    )
    output = tmp_path / "partial"
    result = run_predict([source], output, demo_cache)
    assert result.returncode == 2, result.stderr
    rows = {
        r.split("\t")[2]: r.split("\t")
        for r in (output / "records.tsv").read_text().splitlines()[1:]
    }
    assert rows["good"][6] == "scored"
    assert rows["bad"][6] == "skipped"
    assert rows["empty"][6] == "skipped"


def test_model_type_must_match_the_classifier(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    output = tmp_path / "mismatch"
    result = run_predict(
        [sample],
        output,
        demo_cache,
        "--classifier",
        str(demo_cache / "classifier-500bp-demo.ckpt"),
    )
    assert result.returncode == 1
    assert "trained on 500 bp chunks but --model-type is 300" in result.stderr
    assert not output.exists()  # checked before anything was written
