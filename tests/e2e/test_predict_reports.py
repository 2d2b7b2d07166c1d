"""What a run reports: per-record verdicts, its log, and validate-checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .predict_support import damage, read_consensus, run_app, run_predict

CKPTKIT = Path(sys.executable).with_name("ckptkit")
SCORE_COLUMNS = [
    "scored_chunks",
    "virus_chunks",
    "viral_fraction",
    "max_virus_score",
    "verdict",
]


def _records(output: Path) -> tuple[list[str], list[dict[str, str]]]:
    lines = (output / "records.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return header, [
        dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]
    ]


def test_records_give_each_record_a_verdict_from_its_chunks(reference: Path) -> None:
    header, rows = _records(reference)
    assert header[-5:] == SCORE_COLUMNS
    chunks: Counter[str] = Counter()
    viral: Counter[str] = Counter()
    for chunk_id, is_virus in read_consensus(reference):
        record = chunk_id.rsplit("_chunk_", 1)[0]
        chunks[record] += 1
        viral[record] += is_virus == "True"
    for row in rows:
        record = row["record_id"]
        assert int(row["scored_chunks"]) == chunks[record]
        assert int(row["virus_chunks"]) == viral[record]
        fraction = viral[record] / chunks[record]
        assert row["viral_fraction"] == f"{fraction:.6g}"
        assert row["verdict"] == ("virus" if fraction >= 0.5 else "non-virus")
    summary = json.loads((reference / "run_summary.json").read_text())
    assert summary["record_threshold"] == 0.5
    assert sum(summary["record_verdicts"].values()) == len(rows)


def test_record_threshold_changes_records_only_and_prepare_shares_the_schema(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "strict"
    shutil.copytree(reference, output)
    result = run_predict(
        [sample], output, demo_cache, "--resume", "--record-threshold", "1"
    )
    assert result.returncode == 0, result.stderr
    for name in ("prediction_results.txt", "prediction_results_highestscore.csv"):
        assert (output / name).read_bytes() == (reference / name).read_bytes(), name
    _, rows = _records(output)
    for row in rows:
        all_viral = row["virus_chunks"] == row["scored_chunks"]
        assert row["verdict"] == ("virus" if all_viral else "non-virus")
    prepared = tmp_path / "prepared"
    result = run_app(["prepare", sample, "-o", prepared, "--chunk-size", "300"])
    assert result.returncode == 0, result.stderr
    header, prepare_rows = _records(prepared)
    assert header == _records(reference)[0]  # one records.tsv schema
    assert all(row[name] == "" for row in prepare_rows for name in SCORE_COLUMNS)
    # The account columns agree; only the status moves on, prepared -> scored.
    account = [name for name in header if name not in (*SCORE_COLUMNS, "status")]
    for mine, theirs in zip(prepare_rows, _records(reference)[1], strict=True):
        assert [mine[name] for name in account] == [theirs[name] for name in account]
        assert (mine["status"], theirs["status"]) == ("prepared", "scored")


def test_every_run_writes_its_whole_log_in_the_output_folder(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    log = (reference / "virnucpro.log").read_text()
    assert "INFO device cpu, precision fp32" in log
    assert "INFO found 0/3 shard checkpoints valid" in log
    assert "DEBUG rank 0: shard 1" in log  # more than the console showed
    output = tmp_path / "quiet"
    shutil.copytree(reference, output)
    result = run_predict([sample], output, demo_cache, "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert " INFO " not in result.stderr
    resumed = (output / "virnucpro.log").read_text()
    assert resumed.startswith(log)  # appended to
    assert "INFO found 3/3 shard checkpoints valid" in resumed[len(log) :]


def test_validate_checkpoints_on_a_folder_without_a_run_exits_3(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("not a run\n")
    for folder in (empty, other):
        result = run_app(["validate-checkpoints", folder])
        assert result.returncode == 3, result.stderr
        assert (
            f"error: no checkpoints found in {folder}: is this a predict --output-dir?"
            in result.stderr
        )
    result = run_app(["validate-checkpoints", tmp_path / "missing"])
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_validate_checkpoints_prints_the_ledger_and_ckptkits_json(
    tmp_path: Path, reference: Path
) -> None:
    output = tmp_path / "run"
    shutil.copytree(reference, output)
    victim = output / "checkpoints" / "shard-00002.esm.ckpt"
    damage(victim)
    result = run_app(["validate-checkpoints", output])
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{victim}: corrupted: ")
    assert lines[1].startswith("13 valid, 1 corrupted")
    ledger = output / "checkpoints" / "failed_checkpoints.txt"
    assert lines[2] == f"ledger {ledger}: newest 1 of 1 entries"
    assert lines[3].endswith(f"{victim}: {lines[0].split(': corrupted: ')[1]}")
    ours = run_app(["validate-checkpoints", output, "--json", "--no-ledger"])
    theirs = subprocess.run(
        [str(CKPTKIT), "validate", output / "checkpoints", "--json", "--no-ledger"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ours.returncode == theirs.returncode == 3
    assert json.loads(ours.stdout) == json.loads(theirs.stdout)
    assert "newest 1 of 1 entries" in ours.stderr
