"""``virnucpro-app prepare`` in a real subprocess: outputs, exit codes, messages."""

from __future__ import annotations

import gzip
from pathlib import Path

from ckptkit.types import ExitCode

from ..support.subprocess_runner import run_cli


def _prepare(*args: str | Path) -> tuple[int, str, str]:
    result = run_cli("virnucpro_app", ["prepare", "--no-progress", *args])
    return result.returncode, result.stdout, result.stderr


def test_prepare_writes_chunks_frames_and_report(tmp_path: Path) -> None:
    plain = tmp_path / "a.fa"
    plain.write_bytes(b">c1 first contig\r\nAAACCCGG\r\ngtt\r\n")
    packed = tmp_path / "b.fa.gz"
    packed.write_bytes(gzip.compress(b">c2\n" + b"A" * 301 + b"\n"))
    out = tmp_path / "out"
    code, stdout, stderr = _prepare(plain, packed, "--chunk-size", "300", "-o", out)
    assert code == ExitCode.OK, stderr
    assert "2 records (312 bp): 2 prepared" in stdout
    chunks = (out / "chunks.fa").read_text().splitlines()
    assert chunks == [
        ">c1_chunk_1", "AAACCCGGGTT",
        ">c2_chunk_1", "A" * 300,
        ">c2_chunk_2", "A" * 151,
    ]  # fmt: skip
    proteins = (out / "orfs.protein.faa").read_text().splitlines()
    assert proteins[:4] == [">c1_chunk_1F1", "KPG", ">c1_chunk_1F2", "NPG"]
    nucleotides = (out / "orfs.nucleotide.fa").read_text().splitlines()
    assert nucleotides[:2] == [">c1_chunk_1F1", "AAACCCGGGT"]
    assert nucleotides[::2] == proteins[::2]
    assert len(proteins) == 2 * 18
    report = (out / "records.tsv").read_text().splitlines()
    assert report[1].split("\t") == [
        "0", str(plain), "c1", "11", "1", "6", "prepared", "", "",
        "", "", "", "", "",  # the score columns: empty until predict
    ]  # fmt: skip


def test_prepare_skips_empty_and_invalid_records_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_text(
        ">ok\nATGAAA\n>empty\n\n>bad desc\nACGT\nAC*GT\n>stops\nTTAGTTAGTTAG\n"
    )
    out = tmp_path / "out"
    code, stdout, stderr = _prepare(path, "-o", out)
    assert code == ExitCode.PARTIAL
    assert f"warning: {path}:3: record 'empty' (record 2 of the file)" in stderr
    assert "has an empty sequence; skipped" in stderr
    assert (
        f"warning: {path}:7:3: record 'bad' (record 3 of the file) holds '*'" in stderr
    )
    assert (
        "4 records (27 bp): 1 prepared, 1 without a stop-free frame, 2 skipped"
        in stdout
    )
    rows = [line.split("\t") for line in (out / "records.tsv").read_text().splitlines()]
    assert [(r[2], r[6], r[7]) for r in rows[1:]] == [
        ("ok", "prepared", ""),
        ("empty", "skipped", "empty_sequence"),
        ("bad", "skipped", "invalid_letters"),
        ("stops", "no_stop_free_frame", ""),
    ]
    assert (
        out / "chunks.fa"
    ).read_text() == ">ok_chunk_1\nATGAAA\n>stops_chunk_1\nTTAGTTAGTTAG\n"


def test_prepare_not_fasta_stops_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "reads.fq"
    path.write_text("@r1\nACGT\n+\nIIII\n")
    code, _, stderr = _prepare(path, "-o", tmp_path / "out")
    assert code == ExitCode.FAILURE
    assert f"error: {path}:1: not a FASTA file" in stderr
    assert "seqkit fq2fa" in stderr
    assert not (tmp_path / "out" / "chunks.fa").exists()


def test_prepare_empty_file_stops_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "empty.fa.gz"
    path.write_bytes(gzip.compress(b""))
    code, _, stderr = _prepare(path, "-o", tmp_path / "out")
    assert code == ExitCode.FAILURE
    assert f"error: {path}: empty file: it holds no FASTA records" in stderr


def test_prepare_duplicate_ids_stop_with_exit_1(tmp_path: Path) -> None:
    first = tmp_path / "a.fa"
    first.write_text(">x\nACGT\n>y\nACGT\n")
    second = tmp_path / "b.fa"
    second.write_text(">z\nAC\n>y other\nACGT\n")
    code, _, stderr = _prepare(first, second, "-o", tmp_path / "out")
    assert code == ExitCode.FAILURE
    assert (
        f"error: {second}:3: duplicate record ID 'y' (record 2 of the file)" in stderr
    )
    assert f"record 2 of {first}, line 3" in stderr
    assert "unique ID" in stderr
    assert not any((tmp_path / "out").iterdir())


def test_prepare_binary_input_stops_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(bytes(range(128, 256)) * 4)
    code, _, stderr = _prepare(path, "-o", tmp_path / "out")
    assert code == ExitCode.FAILURE
    assert f"error: {path}: not a FASTA file: it is not text" in stderr


def test_prepare_missing_input_stops_with_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.fa"
    code, _, stderr = _prepare(missing, "-o", tmp_path / "out")
    assert code == ExitCode.FAILURE
    # The inputs are checked together before anything is written (issue 15).
    assert stderr == (f"error: {missing}: no such file; check the input paths\n")


def test_prepare_refuses_existing_outputs_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_text(">a\nATGAAA\n")
    out = tmp_path / "out"
    assert _prepare(path, "-o", out)[0] == ExitCode.OK
    code, _, stderr = _prepare(path, "-o", out)
    assert code == ExitCode.FAILURE
    assert "already exists; pass --force" in stderr
    assert _prepare(path, "-o", out, "--force")[0] == ExitCode.OK


def test_prepare_refuses_a_chunk_size_below_one(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_text(">a\nATGAAA\n")
    code, _, stderr = _prepare(path, "-o", tmp_path / "out", "--chunk-size", "0")
    assert code == ExitCode.FAILURE
    assert "--chunk-size must be at least 1" in stderr


def test_prepare_progress_goes_to_stderr_only(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_text(">a\nATGAAA\n")
    result = run_cli("virnucpro_app", ["prepare", path, "-o", tmp_path / "out"])
    assert result.returncode == ExitCode.OK, result.stderr
    summary = (
        "1 records (6 bp): 1 prepared, 0 without a stop-free frame, 0 skipped; "
        f"1 chunks, 5 frames -> {tmp_path / 'out'}"
    )
    assert result.stdout.splitlines() == [summary]
