"""FailureLedger: line format, escaping, old files, malformed lines, latest()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit.ledger import (
    LEDGER_FILENAME,
    FailureLedger,
    LedgerEntry,
    escape_field,
    parse_line,
    unescape_field,
)

from ...support.corrupt import flip_tensor_bit

if TYPE_CHECKING:
    from pathlib import Path

STAMP = "2025-01-31T12:00:00.000000Z"


def test_ledger_file_is_failed_checkpoints_txt_in_the_directory(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.record("a.ckpt", "bad")
    assert ledger.path == tmp_path / "failed_checkpoints.txt"
    assert LEDGER_FILENAME == "failed_checkpoints.txt"
    assert ledger.path.is_file()


def test_record_writes_one_line_path_reason_timestamp(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    entry = ledger.record("run/a.ckpt", "checksum mismatch", timestamp=STAMP)
    assert entry == LedgerEntry("run/a.ckpt", "checksum mismatch", STAMP)
    text = ledger.path.read_text(encoding="utf-8")
    assert text == f"run/a.ckpt|checksum mismatch|{STAMP}\n"


def test_record_default_timestamp_is_utc_iso_now(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    entry = FailureLedger(tmp_path).record("a", "b")
    after = datetime.now(UTC)
    assert entry.timestamp.endswith("Z")
    assert before <= datetime.fromisoformat(entry.timestamp) <= after


def test_record_converts_timestamps_to_utc(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    plus_two = timezone(timedelta(hours=2))
    aware = ledger.record("a", "b", timestamp=datetime(2025, 1, 1, 14, tzinfo=plus_two))
    naive = ledger.record("a", "b", timestamp="2025-01-01T12:00:00")
    assert aware.timestamp == naive.timestamp == "2025-01-01T12:00:00.000000Z"


def test_record_rejects_a_timestamp_that_is_not_iso(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    with pytest.raises(ValueError, match="ISO-8601"):
        ledger.record("a", "b", timestamp="yesterday|noon")
    assert not ledger.path.exists()


def test_record_creates_the_directory(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path / "new" / "folder")
    ledger.record("a", "b")
    assert len(ledger.entries()) == 1


def test_escaping_keeps_pipes_newlines_and_backslashes_on_one_line(
    tmp_path: Path,
) -> None:
    ledger = FailureLedger(tmp_path)
    path, reason = "dir|x\\y.ckpt", "line one\nline two | \\n literal\r\t"
    ledger.record(path, reason, timestamp=STAMP)
    raw = ledger.path.read_text(encoding="utf-8")
    assert raw.count("\n") == 1
    assert (
        raw
        == f"dir\\|x\\\\y.ckpt|line one\\nline two \\| \\\\n literal\\r\\t|{STAMP}\n"
    )
    assert ledger.entries() == [LedgerEntry(path, reason, STAMP)]


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain é 中", "plain é 中"),
        ("\x00\x1b\x7f", "\\x00\\x1b\\x7f"),
        ("\x85\u2028\u2029", "\\x85\\u2028\\u2029"),
        ("\udc80", "\\udc80"),
    ],
)
def test_escape_field_hides_every_line_break_and_unencodable_char(
    text: str, escaped: str
) -> None:
    assert escape_field(text) == escaped
    assert unescape_field(escaped) == text
    assert len(escaped.splitlines()) <= 1


def test_unescape_keeps_unknown_escapes_of_old_tools() -> None:
    assert unescape_field(r"C:\data\x.pt\q") == r"C:\data\x.pt\q"


def test_old_unescaped_line_splits_on_first_and_last_pipe() -> None:
    entry = parse_line("/ck/a.pt|RuntimeError: a | b | c|2024-05-01T10:00:00.123456")
    assert entry == LedgerEntry(
        "/ck/a.pt", "RuntimeError: a | b | c", "2024-05-01T10:00:00.123456"
    )


@pytest.mark.parametrize(
    "line",
    ["no pipes at all", "one|pipe", "a|b|not a time", "a\\|b|2024-01-01"],
)
def test_parse_line_returns_none_for_malformed_lines(line: str) -> None:
    assert parse_line(line) is None


def test_malformed_lines_are_kept_reported_and_not_fatal(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.path.write_text(
        f"a|ok|{STAMP}\ngarbage line\n\nb|x | y|{STAMP}\nc|bad time|soon\n",
        encoding="utf-8",
    )
    assert [e.path for e in ledger.entries()] == ["a", "b"]
    assert ledger.entries()[1].reason == "x | y"
    assert ledger.malformed == [(2, "garbage line"), (5, "c|bad time|soon")]
    assert "garbage line" in ledger.path.read_text(encoding="utf-8")


def test_crlf_and_bom_of_edited_files_are_tolerated(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.path.write_bytes(f"\ufeffa|r|{STAMP}\r\nb|r|{STAMP}\r\n".encode())
    assert [e.path for e in ledger.entries()] == ["a", "b"]
    assert ledger.malformed == []


def test_incomplete_last_line_is_malformed_and_next_record_starts_fresh(
    tmp_path: Path,
) -> None:
    """A crash mid-append leaves a torn last line; it never swallows the next one."""
    ledger = FailureLedger(tmp_path)
    ledger.record("a", "first", timestamp=STAMP)
    with ledger.path.open("ab") as handle:
        handle.write(b"b|torn reas")
    assert ledger.malformed == [(2, "b|torn reas")]
    ledger.record("c", "after crash", timestamp=STAMP)
    assert [e.path for e in ledger.entries()] == ["a", "c"]
    assert ledger.malformed == [(2, "b|torn reas")]


def test_non_utf8_paths_of_old_tools_read_back_as_fsdecode_gives_them(
    tmp_path: Path,
) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.path.write_bytes(b"/ck/caf\xe9.pt|bad|2024-01-01T00:00:00\n")
    (entry,) = ledger.entries()
    assert entry.path == "/ck/caf\udce9.pt"
    ledger.record(entry.path, "again")
    assert ledger.entries()[1].path == entry.path


def test_entries_of_a_missing_ledger_are_empty(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path / "nowhere")
    assert ledger.entries() == []
    assert ledger.malformed == []
    assert ledger.latest("a") is None


def test_entries_are_in_append_order_and_nothing_is_removed(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    for index in range(5):
        ledger.record(f"c{index % 2}", f"reason {index}")
    assert [e.reason for e in ledger.entries()] == [f"reason {i}" for i in range(5)]


def test_latest_returns_the_last_entry_for_a_path(tmp_path: Path) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.record(tmp_path / "a.ckpt", "first")
    ledger.record(tmp_path / "b.ckpt", "other")
    ledger.record(tmp_path / "a.ckpt", "second")
    latest = ledger.latest(tmp_path / "a.ckpt")
    assert latest is not None
    assert latest.reason == "second"
    assert ledger.latest(tmp_path / "c.ckpt") is None


def test_latest_matches_the_same_file_spelled_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = FailureLedger(tmp_path)
    ledger.record(tmp_path / "run" / "a.ckpt", "bad")
    entry = ledger.latest("run/./a.ckpt")
    assert entry is not None
    assert entry.reason == "bad"


def test_validate_records_a_failure_in_the_ledger(tmp_path: Path) -> None:
    target = tmp_path / "a.ckpt"
    ckptkit.save(target, {"w": torch.ones(4)})
    flip_tensor_bit(target)
    ledger = ckptkit.FailureLedger(tmp_path)
    report = ckptkit.validate(target, ledger=ledger)
    assert not report.ok
    (entry,) = ledger.entries()
    assert entry.path == str(target)
    assert entry.reason == report.reason


def test_validate_records_nothing_for_a_valid_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "a.ckpt"
    ckptkit.save(target, {"w": torch.ones(4)})
    ledger = ckptkit.FailureLedger(tmp_path)
    assert ckptkit.validate(target, ledger=ledger).ok
    assert not ledger.path.exists()
