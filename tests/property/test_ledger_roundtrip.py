"""Any path and reason text survives record() and entries() unchanged, on one line."""

from __future__ import annotations

import tempfile

from hypothesis import given
from hypothesis import strategies as st

from ckptkit.ledger import FailureLedger, LedgerEntry, escape_field, parse_line

# Every code point, surrogates included, plus the characters the format escapes,
# drawn often enough to meet each other (and old-style "\n" escape look-alikes).
_SPECIAL = st.sampled_from(
    ["|", "\\", "\n", "\r", "\\n", "\\|", "\\\\", "\x85", "\u2028"]
)
ledger_text = st.lists(
    st.one_of(st.characters(codec=None, exclude_categories=()), _SPECIAL), max_size=12
).map("".join)


@given(path=ledger_text, reason=ledger_text)
def test_record_then_entries_round_trips_any_text(path: str, reason: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = FailureLedger(folder, fsync=False)
        written = ledger.record(path, reason)
        assert ledger.entries() == [LedgerEntry(path, reason, written.timestamp)]
        assert ledger.malformed == []
        raw = ledger.path.read_bytes()
        assert raw.count(b"\n") == 1
        assert len(raw.decode("utf-8").splitlines()) == 1


@given(records=st.lists(st.tuples(ledger_text, ledger_text), min_size=1, max_size=5))
def test_many_records_read_back_in_order(records: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = FailureLedger(folder, fsync=False)
        for path, reason in records:
            ledger.record(path, reason)
        assert [(e.path, e.reason) for e in ledger.entries()] == records


@given(text=ledger_text)
def test_escaped_field_holds_no_unescaped_pipe_or_line_break(text: str) -> None:
    escaped = escape_field(text)
    assert "\n" not in escaped
    assert "\r" not in escaped
    line = f"{escaped}|{escaped}|2025-01-01T00:00:00.000000Z"
    assert parse_line(line) == LedgerEntry(text, text, "2025-01-01T00:00:00.000000Z")
