"""The prepare stage: batches, accounts, worker processes, atomic outputs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ckptkit.types import ExitCode
from virnucpro_app.errors import PipelineError
from virnucpro_app.fasta import read_records
from virnucpro_app.layout import RunLayout
from virnucpro_app.prepare import (
    PreparedBatch,
    prepare_batch,
    prepare_records,
    run_prepare,
    write_prepared,
)
from virnucpro_app.records import (
    RECORDS_TABLE,
    RecordColumn,
    RecordRow,
    RecordsTable,
    RecordsWriter,
)

# "stops" has a stop in each of its six frames; poly-A keeps all six.
_FASTA = (
    ">a\nAAACCCGGGTT\n>empty\n>bad\nACXGT\n>stops\nTTAGTTAGTTAG\n>c\n" + "A" * 40 + "\n"
)


def _records(tmp_path: Path, text: str = _FASTA) -> list:
    path = tmp_path / "in.fa"
    path.write_text(text)
    return list(read_records([path]))


def test_prepare_batch_accounts_for_every_record(tmp_path: Path) -> None:
    batch = prepare_batch(_records(tmp_path), chunk_size_bp=30)
    rows = [
        (a.record_id, a.num_chunks, a.num_frames, a.status, a.reason)
        for a in batch.accounts
    ]
    assert rows == [
        ("a", 1, 6, "prepared", ""),
        ("empty", 0, 0, "skipped", "empty_sequence"),
        ("bad", 0, 0, "skipped", "invalid_letters"),
        ("stops", 1, 0, "no_stop_free_frame", ""),
        ("c", 2, 12, "prepared", ""),
    ]
    assert batch.chunk_ids == ["a_chunk_1", "stops_chunk_1", "c_chunk_1", "c_chunk_2"]
    assert batch.chunk_sequences[3] == "A" * 21  # [19, 40): the short tail
    assert batch.frame_ids[:6] == [
        f"a_chunk_1{n}" for n in ("F1", "F2", "F3", "R1", "R2", "R3")
    ]
    assert batch.frame_proteins[0] == "KPG"
    assert batch.frame_nucleotides[0] == "AAACCCGGGT"
    assert batch.num_bp == 11 + 0 + 5 + 12 + 40


def test_prepare_records_keeps_order_with_worker_processes(tmp_path: Path) -> None:
    text = "".join(f">r{i}\n{'ACGTTGCAAGGCTTA' * (i % 7 + 1)}\n" for i in range(60))
    records = _records(tmp_path, text + ">x\nAC-T\n")
    single = list(prepare_records(records, chunk_size_bp=20, workers=1, batch_bp=100))
    # Two batches here, the rest in two worker processes.
    pooled = list(
        prepare_records(
            records, chunk_size_bp=20, workers=2, batch_bp=100, pool_after_bp=150
        )
    )
    assert len(pooled) > 4
    assert pooled == single
    assert [a.index for b in pooled for a in b.accounts] == list(range(61))


def test_prepare_records_starts_no_workers_for_small_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("worker processes started")

    monkeypatch.setattr("virnucpro_app.prepare.ordered_map", no_pool)
    records = _records(tmp_path)
    batches = list(prepare_records(records, chunk_size_bp=5, workers=2, batch_bp=10))
    assert len(batches) == 3  # [11 bp], [0, 5, 12 bp], [40 bp]


def test_prepare_records_refuses_a_chunk_size_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(prepare_records(_records(tmp_path), chunk_size_bp=0))


def test_prepare_records_works_on_a_record_range(tmp_path: Path) -> None:
    records = _records(tmp_path)
    batches = list(prepare_records(records[3:], chunk_size_bp=30))
    assert [a.index for a in batches[0].accounts] == [3, 4]


def test_run_prepare_writes_the_four_files(tmp_path: Path) -> None:
    (tmp_path / "in.fa").write_text(_FASTA)
    summary = run_prepare([tmp_path / "in.fa"], tmp_path / "out", chunk_size_bp=30)
    layout = RunLayout(tmp_path / "out")
    assert summary.exit_code is ExitCode.PARTIAL
    assert summary.tally.counts == {
        "prepared": 2,
        "skipped": 2,
        "no_stop_free_frame": 1,
    }
    assert (summary.num_chunks, summary.num_frames) == (4, 18)
    chunks = layout.chunks_fasta_path.read_text().splitlines()
    assert chunks[:2] == [">a_chunk_1", "AAACCCGGGTT"]
    nucleotide_ids = layout.orf_nucleotide_path.read_text().splitlines()[::2]
    protein_ids = layout.orf_protein_path.read_text().splitlines()[::2]
    assert nucleotide_ids == protein_ids
    assert len(protein_ids) == 18
    report = layout.records_report_path.read_text().splitlines()
    assert report[0].split("\t") == [
        "index", "file", "record_id", "length_bp", "num_chunks", "num_frames",
        "status", "reason", "detail", "scored_chunks", "virus_chunks",
        "viral_fraction", "max_virus_score", "verdict",
    ]  # fmt: skip
    # prepare scores nothing: the five score columns are empty.
    assert all(row.split("\t")[9:] == [""] * 5 for row in report[1:])
    assert len(report) == 6
    assert sorted(p.name for p in layout.output_dir.iterdir()) == [
        "chunks.fa", "orfs.nucleotide.fa", "orfs.protein.faa", "records.tsv",
    ]  # fmt: skip


def test_run_prepare_is_ok_when_nothing_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "in.fa").write_text(">a\nTAATAA\n")
    summary = run_prepare([tmp_path / "in.fa"], tmp_path / "out", workers=1)
    assert summary.exit_code is ExitCode.OK


def test_write_prepared_refuses_existing_outputs_without_force(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    layout.chunks_fasta_path.write_text("old")
    with pytest.raises(PipelineError, match=r"chunks\.fa already exists; pass --force"):
        write_prepared([], layout)
    write_prepared([], layout, force=True)
    assert layout.chunks_fasta_path.read_text() == ""


def test_write_prepared_leaves_nothing_when_the_stream_fails(tmp_path: Path) -> None:
    batch = prepare_batch(_records(tmp_path), chunk_size_bp=30)
    out = RunLayout(tmp_path / "out")

    def failing() -> list[PreparedBatch]:
        yield batch
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_prepared(failing(), out)
    assert list(out.output_dir.iterdir()) == []


def test_records_writer_writes_the_columns_of_an_extended_table() -> None:
    extra = RecordColumn.of("num_viral_chunks", "virus_chunks")
    table = RecordsTable((*RECORDS_TABLE.columns[:9], extra))
    out = io.StringIO(newline="")
    writer = RecordsWriter(out, table)
    writer.write([RecordRow(0, "a.fa", "c1", 900, 2, 3, "scored", virus_chunks=1)])
    header, row = out.getvalue().splitlines()
    assert header.endswith("detail\tnum_viral_chunks")
    assert row == "0\ta.fa\tc1\t900\t2\t3\tscored\t\t\t1"
