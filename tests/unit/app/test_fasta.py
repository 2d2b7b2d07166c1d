"""Reading and checking FASTA: gzip, case, line endings, located problems."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from virnucpro_app.errors import InputError
from virnucpro_app.fasta import RecordProblem, normalize_sequence, read_records


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("ascii"))
    return path


def test_read_records_takes_the_first_header_word_and_uppercases(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "in.fa", ">c1 some description\nacgtN\nRY\n>c2\nAC\n")
    records = list(read_records([path]))
    assert [(r.index, r.number, r.id, r.sequence) for r in records] == [
        (0, 1, "c1", b"ACGTNRY"),
        (1, 2, "c2", b"AC"),
    ]
    assert records[0].problem is None
    assert records[0].length_bp == 7


def test_read_records_reads_gzip_and_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "in.fa.gz"
    path.write_bytes(gzip.compress(b">c1\r\nACGT\r\nAC\r\n\r\n>c2\r\nGG\r\n"))
    assert [(r.id, r.sequence) for r in read_records([path])] == [
        ("c1", b"ACGTAC"),
        ("c2", b"GG"),
    ]


def test_read_records_numbers_records_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.fa", ">a1\nAC\n>a2\nGT\n")
    second = _write(tmp_path / "b.fa", ">b1\nAC\n")
    records = list(read_records([first, second]))
    assert [(r.index, r.path.name, r.number) for r in records] == [
        (0, "a.fa", 1),
        (1, "a.fa", 2),
        (2, "b.fa", 1),
    ]


def test_empty_sequence_is_marked_with_its_header_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", ">c1\nAC\n\n# note\n>c2\n>c3\nAC\n")
    records = list(read_records([path]))
    assert records[1].problem is RecordProblem.EMPTY_SEQUENCE
    assert records[1].message.startswith(
        f"{path}:5: record 'c2' (record 2 of the file)"
    )
    assert "empty sequence" in records[1].message
    assert records[2].problem is None


def test_invalid_letters_are_marked_with_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", ">c1\nACGT\n>c2 x\nACGT\n  AC*G-\n>c3\nAC\n")
    records = list(read_records([path]))
    bad = records[1]
    assert bad.problem is RecordProblem.INVALID_LETTERS
    assert bad.sequence == b""
    assert bad.length_bp == 9  # surrounding blanks are stripped
    assert bad.message.startswith(f"{path}:5:5: record 'c2'")
    assert "'*', '-'" in bad.message
    assert "replace them with N" in bad.message


def test_invalid_letters_located_in_later_records_of_a_gzip_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.fa.gz"
    path.write_bytes(gzip.compress(b">a\nAXC\n>b\nAC\n>c\nACGT\nAC GT\n"))
    records = list(read_records([path]))
    assert records[0].message.startswith(f"{path}:2:2: record 'a'")
    assert records[2].message.startswith(f"{path}:7:3: record 'c'")


def test_not_fasta_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", "\nhello world\n>c1\nAC\n")
    with pytest.raises(InputError, match=r"in\.fa:2: not a FASTA file") as caught:
        list(read_records([path]))
    assert "seqkit fq2fa" in str(caught.value)


def test_binary_file_is_not_fasta(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(bytes([0xFF, 0xFE, 0x00, 0x81]) * 10)
    with pytest.raises(InputError, match="not a FASTA file: it is not text"):
        list(read_records([path]))


def test_non_ascii_sequence_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(">c1\nAC\n>c2\nAC\nA\xc3\xa9C\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"in\.fa:5: not a FASTA file.*ASCII"):
        list(read_records([path]))


def test_empty_file_stops_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", "")
    with pytest.raises(InputError, match="empty file: it holds no FASTA records"):
        list(read_records([path]))


def test_file_of_blank_and_comment_lines_is_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", "\n# nothing\n\n")
    with pytest.raises(InputError, match="empty file"):
        list(read_records([path]))


def test_duplicate_id_names_both_records(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", ">a\nAC\n>b x\nAC\n\n>b y\nAC\n")
    with pytest.raises(InputError) as caught:
        list(read_records([path]))
    message = str(caught.value)
    assert message.startswith(
        f"{path}:6: duplicate record ID 'b' (record 3 of the file)"
    )
    assert f"record 2 of {path}, line 3" in message
    assert "seqkit rename" in message


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.fa", ">x\nAC\n>dup\nAC\n")
    second = _write(tmp_path / "b.fa", ">dup\nAC\n")
    with pytest.raises(InputError, match=rf"b\.fa:1: duplicate.*record 2 of {first}"):
        list(read_records([first, second]))


def test_header_without_id_stops_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.fa", ">a\nAC\n>\nAC\n")
    with pytest.raises(InputError, match=r"in\.fa:3: record 2 has an empty header"):
        list(read_records([path]))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.fa: no such file"):
        list(read_records([tmp_path / "nope.fa"]))


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "in.fa.gz"
    sequence = bytes(random.Random(1).choices(b"ACGT", k=20_000))
    data = gzip.compress(b">a\n" + sequence + b"\n")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"in\.fa\.gz: cannot read the file"):
        list(read_records([path]))


def test_normalize_sequence_uppercases_iupac_and_refuses_the_rest() -> None:
    assert normalize_sequence(b"acgturyswkmbdhvn") == b"ACGTURYSWKMBDHVN"
    for bad in (b"AC GT", b"AC-GT", b"ACX", b"AC*", b"AC1", b"AC\0"):
        assert normalize_sequence(bad) is None
