"""records.tsv: one row type, one table that prepare and predict both write."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.records import (
    RECORDS_TABLE,
    RecordRow,
    RecordsWriter,
    RecordTally,
    record_verdict,
    write_records,
)

_SKIPPED = RecordRow(
    1, "a.fa", 'odd"id', 12, 0, 0, "skipped", "invalid_letters", "a.fa:3:1: bad\tletter"
)
_HEADER = (
    "index\tfile\trecord_id\tlength_bp\tnum_chunks\tnum_frames\tstatus\t"
    "reason\tdetail\tscored_chunks\tvirus_chunks\tviral_fraction\t"
    "max_virus_score\tverdict"
)


def _written(rows: list[RecordRow]) -> str:
    out = io.StringIO(newline="")
    RecordsWriter(out, RECORDS_TABLE).write(rows)
    return out.getvalue()


def test_prepare_rows_leave_the_score_columns_empty_and_are_csv_quoted() -> None:
    assert _written([_SKIPPED]).splitlines() == [
        _HEADER,
        (
            '1\ta.fa\t"odd""id"\t12\t0\t0\tskipped\tinvalid_letters\t'
            '"a.fa:3:1: bad\tletter"\t\t\t\t\t'
        ),
    ]


def test_predict_rows_fill_the_scores_and_the_verdict() -> None:
    scored = RecordRow(
        0, "in.fa", "c1", 900, 2, 6, "scored", scored_chunks=3, virus_chunks=2,
        viral_fraction=2 / 3, max_virus_score=0.123456789, verdict="virus",
    )  # fmt: skip
    none_scored = RecordRow(
        2, "in.fa", "c2", 40, 1, 0, "no_stop_free_frame", scored_chunks=0,
        virus_chunks=0,
    )  # fmt: skip
    assert _written([scored, none_scored]).splitlines() == [
        _HEADER,
        "0\tin.fa\tc1\t900\t2\t6\tscored\t\t\t3\t2\t0.666667\t0.123457\tvirus",
        "2\tin.fa\tc2\t40\t1\t0\tno_stop_free_frame\t\t\t0\t0\t\t\t",
    ]


def test_write_records_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.tsv"
    path.write_text("old\n")
    write_records(path, [_SKIPPED])
    lines = path.read_text().splitlines()
    assert lines[0] == _HEADER
    assert lines[1].startswith('1\ta.fa\t"odd""id"\t12\t')


def test_tally_counts_rows_by_status() -> None:
    tally = RecordTally.of([_SKIPPED, _SKIPPED])
    tally.add([RecordRow(2, "a.fa", "c", 5, 1, 1, "prepared")])
    assert (tally.num_records, tally.num_skipped) == (3, 2)


@given(
    scored=st.integers(min_value=1, max_value=200),
    data=st.data(),
    threshold=st.floats(min_value=0.0, max_value=1.0),
)
def test_record_verdict_is_virus_exactly_when_the_fraction_reaches_the_threshold(
    scored: int, data: st.DataObject, threshold: float
) -> None:
    virus = data.draw(st.integers(min_value=0, max_value=scored))
    fraction, verdict = record_verdict(scored, virus, threshold)
    assert fraction == virus / scored
    assert verdict == ("virus" if virus / scored >= threshold else "non-virus")


def test_record_verdict_is_empty_without_a_scored_chunk() -> None:
    assert record_verdict(0, 0, 0.0) == (None, "")
