"""records.tsv: one row type, the two tables prepare and predict write."""

from __future__ import annotations

import io
import math
from pathlib import Path

from virnucpro_app.records import (
    PREDICT_TABLE,
    PREPARE_TABLE,
    RecordRow,
    RecordsTable,
    RecordsWriter,
    RecordTally,
    write_records,
)

_SKIPPED = RecordRow(
    1, "a.fa", 'odd"id', 12, 0, 0, "skipped", "invalid_letters", "a.fa:3:1: bad\tletter"
)


def _written(table: RecordsTable, rows: list[RecordRow]) -> str:
    out = io.StringIO(newline="")
    RecordsWriter(out, table).write(rows)
    return out.getvalue()


def test_prepare_table_writes_every_account_field_csv_quoted() -> None:
    text = _written(PREPARE_TABLE, [_SKIPPED])
    assert text.splitlines() == [
        (
            "index\tfile\trecord_id\tlength_bp\tnum_chunks\tnum_frames\tstatus\t"
            "reason\tdetail"
        ),
        (
            '1\ta.fa\t"odd""id"\t12\t0\t0\tskipped\tinvalid_letters\t'
            '"a.fa:3:1: bad\tletter"'
        ),
    ]


def test_predict_table_writes_scores_under_its_own_names_unquoted() -> None:
    scored = RecordRow(
        0, "", "c1", 900, 2, 6, "scored", scored_chunks=2, virus_chunks=1,
        max_virus_score=0.123456789,
    )  # fmt: skip
    skipped = RecordRow(1, "", 'odd"id', 12, 0, 0, "skipped", "why: it is bad")
    assert _written(PREDICT_TABLE, [scored, skipped]).splitlines() == [
        (
            "record_id\tlength_bp\tchunks\tkept_frames\tscored_chunks\tvirus_chunks\t"
            "max_virus_score\tstatus\treason"
        ),
        "c1\t900\t2\t6\t2\t1\t0.123457\tscored\t",
        'odd"id\t12\t0\t0\t0\t0\t\tskipped\twhy: it is bad',
    ]
    assert math.isnan(skipped.max_virus_score)


def test_write_records_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.tsv"
    path.write_text("old\n")
    write_records(path, [_SKIPPED], PREDICT_TABLE)
    assert path.read_text().splitlines()[1].startswith('odd"id\t12\t')


def test_tally_counts_rows_by_status() -> None:
    tally = RecordTally.of([_SKIPPED, _SKIPPED])
    tally.add([RecordRow(2, "a.fa", "c", 5, 1, 1, "prepared")])
    assert (tally.num_records, tally.num_skipped) == (3, 2)
