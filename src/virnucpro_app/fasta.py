r"""Read and check FASTA input: plain or gzip, errors that name file, line and record.

Parsing is dnaio's (``dnaio.open(..., fileformat="fasta")``); this module adds
the checks VirNucPro's later stages rely on and decides what each problem does:

============================  ==========================================
Problem                       Outcome
============================  ==========================================
file missing / unreadable     :class:`InputError`, the run stops (exit 1)
not FASTA (text or binary)    :class:`InputError`, the run stops (exit 1)
no records (empty file)       :class:`InputError`, the run stops (exit 1)
record without an ID          :class:`InputError`, the run stops (exit 1)
duplicate record ID           :class:`InputError`, the run stops (exit 1)
empty sequence                record skipped and reported (exit 2 at the end)
letters that are not IUPAC    record skipped and reported (exit 2 at the end)
============================  ==========================================

dnaio does not report line numbers for good records, so the line of a problem
record is found by :class:`_LineLocator`, which re-reads the file forward only
when a problem turns up and follows dnaio's line rules (blank lines and lines
starting with ``#`` are skipped, ``\r\n`` and ``\r`` end lines too).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

import dnaio

from virnucpro_app.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ckptkit.types import PathLike

#: IUPAC nucleotide letters (either case is accepted).
IUPAC_NUCLEOTIDES = "ACGTURYSWKMBDHVN"

# Valid letters -> uppercase, anything else -> NUL: one pass both uppercases a
# sequence and marks the letters it must not hold.
_NORMALIZE = bytes(
    ord(chr(b).upper()) if chr(b).upper() in IUPAC_NUCLEOTIDES else 0
    for b in range(256)
)
_VALID_BYTES = (IUPAC_NUCLEOTIDES + IUPAC_NUCLEOTIDES.lower()).encode("ascii")
_FIX_IDS = "give every record a unique ID (for example with `seqkit rename`)"


class RecordProblem(StrEnum):
    """Why a record is skipped (the run goes on and ends "partial")."""

    EMPTY_SEQUENCE = "empty_sequence"
    INVALID_LETTERS = "invalid_letters"


@dataclass(frozen=True, slots=True)
class FastaRecord:
    """One input record, checked.

    Attributes:
        index: 0-based position among all records of all inputs.
        path: The file it came from.
        number: 1-based position within that file.
        id: The first whitespace-separated word of the header.
        sequence: The sequence, uppercase ASCII; empty when ``problem`` is set.
        length_bp: The sequence length as read.
        problem: Why the record must be skipped, or ``None``.
        message: For a problem: file, line, record and the fix.
    """

    index: int
    path: Path
    number: int
    id: str
    sequence: bytes
    length_bp: int
    problem: RecordProblem | None = None
    message: str = ""


def normalize_sequence(sequence: bytes) -> bytes | None:
    """The sequence uppercased, or ``None`` if it holds a letter that is not IUPAC.

    One ``bytes.translate`` pass does both jobs: valid letters map to their
    uppercase, anything else to NUL, which is then searched for.

    Example:
        >>> normalize_sequence(b"acgtN"), normalize_sequence(b"AC-GT")
        (b'ACGTN', None)
    """
    upper = sequence.translate(_NORMALIZE)
    return None if b"\0" in upper else upper


def read_records(paths: Iterable[PathLike]) -> Iterator[FastaRecord]:
    """Stream the records of FASTA files (plain or compressed) in order, checked.

    Args:
        paths: Input files, read one after the other; IDs must be unique
            across all of them.

    Yields:
        Each record; a skippable problem is recorded on the record.

    Raises:
        InputError: For a missing file, a file that is not FASTA, a file with no
            records, a record without an ID, or a duplicate ID.

    Example:
        >>> records = list(read_records(["contigs.fa.gz"]))  # doctest: +SKIP
    """
    seen: set[str] = set()
    index = 0
    path_list = [Path(path) for path in paths]
    for position, path in enumerate(path_list):
        for record in _read_file(path, index, seen, paths_before=path_list[:position]):
            yield record
            index += 1


def _read_file(
    path: Path, first_index: int, seen: set[str], *, paths_before: list[Path]
) -> Iterator[FastaRecord]:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the input path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a FASTA file")
    locator = _LineLocator(path)
    number = 0
    try:
        with dnaio.open(path, fileformat="fasta") as reader:
            for number, raw in enumerate(reader, start=1):
                words = raw.name.split(maxsplit=1)
                if not words:
                    line = _header_line(path, number)
                    raise InputError(
                        f"{path}:{line}: record {number} has an empty header, so no "
                        f"ID; {_FIX_IDS}"
                    )
                record_id = words[0]
                if record_id in seen:
                    raise _duplicate_error(path, number, record_id, paths_before)
                seen.add(record_id)
                yield _checked(
                    locator,
                    index=first_index + number - 1,
                    number=number,
                    record_id=record_id,
                    sequence=raw.sequence,
                )
    except dnaio.exceptions.FileFormatError as error:
        raise _not_fasta_error(path, error) from error
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: not a FASTA file: it is not text (byte "
            f"{error.object[error.start]:#04x} cannot be read as text); pass FASTA "
            "input, plain or gzip-compressed"
        ) from error
    except (EOFError, OSError) as error:
        raise InputError(
            f"{path}: cannot read the file ({error}); is it truncated or damaged?"
        ) from error
    finally:
        locator.close()
    if number == 0:
        raise InputError(
            f"{path}: empty file: it holds no FASTA records; remove it from the inputs"
        )


def _checked(
    locator: _LineLocator, *, index: int, number: int, record_id: str, sequence: str
) -> FastaRecord:
    """The record of ``locator``'s file, uppercased, or marked to be skipped."""
    path = locator.path
    raw = sequence.encode("ascii")  # dnaio already refused non-ASCII text
    where = f"record {record_id!r} (record {number} of the file)"
    if not raw:
        line = locator.locate(number).header_line
        return FastaRecord(
            index, path, number, record_id, b"", 0, RecordProblem.EMPTY_SEQUENCE,
            f"{path}:{line}: {where} has an empty sequence; skipped. Fix: remove the "
            "record or restore its sequence",
        )  # fmt: skip
    upper = normalize_sequence(raw)
    if upper is not None:
        return FastaRecord(index, path, number, record_id, upper, len(raw))
    bad = ", ".join(
        repr(chr(b)) for b in sorted(set(raw.translate(None, _VALID_BYTES)))
    )
    found = locator.locate(number, find_invalid=True)
    return FastaRecord(
        index, path, number, record_id, b"", len(raw), RecordProblem.INVALID_LETTERS,
        f"{path}:{found.line}:{found.column}: {where} holds {bad}, not IUPAC "
        f"nucleotide letters ({IUPAC_NUCLEOTIDES}, either case); skipped. Fix: "
        "replace them with N or remove them",
    )  # fmt: skip


def _not_fasta_error(path: Path, error: dnaio.exceptions.FileFormatError) -> InputError:
    line = error.line + 1 if error.line is not None else _first_non_ascii_line(path)
    where = f"{path}:{line}" if line else str(path)
    detail = str(error).split(": ", 1)[-1]
    if "ASCII" in detail:
        hint = "remove the non-ASCII characters"
    else:
        hint = "pass FASTA input (plain or .gz); convert FASTQ with `seqkit fq2fa`"
    return InputError(f"{where}: not a FASTA file: {detail}; {hint}")


def _duplicate_error(
    path: Path, number: int, record_id: str, paths_before: list[Path]
) -> InputError:
    line = _header_line(path, number)
    first = f"(not found again in {path})"
    for other in [*paths_before, path]:
        with dnaio.open(other, fileformat="fasta") as reader:
            for other_number, raw in enumerate(reader, start=1):
                if (raw.name.split(maxsplit=1) or [""])[0] == record_id:
                    other_line = _header_line(other, other_number)
                    first = f"record {other_number} of {other}, line {other_line}"
                    break
            else:
                continue
        break
    return InputError(
        f"{path}:{line}: duplicate record ID {record_id!r} (record {number} of the "
        f"file); the same ID is already used by {first}. Later stages would mix "
        f"the two up; {_FIX_IDS}"
    )


@dataclass(frozen=True, slots=True)
class _Location:
    header_line: int
    line: int = 0
    column: int = 0


def _open_text(path: Path) -> IO[str] | None:
    """The file as text lines the way dnaio sees them; ``None`` if unsupported."""
    with path.open("rb") as probe:
        magic = probe.read(6)
    # Each stream is handed to the TextIOWrapper, which closes it.
    raw: io.BufferedIOBase
    if magic.startswith(b"\x1f\x8b"):
        raw = gzip.GzipFile(path, "rb")
    elif magic.startswith(b"BZh"):
        raw = bz2.BZ2File(path, "rb")
    elif magic.startswith(b"\xfd7zXZ\x00"):
        raw = lzma.LZMAFile(path, "rb")  # noqa: SIM115 - closed with the wrapper
    elif magic.startswith(b"\x28\xb5\x2f\xfd"):  # zstd: dnaio reads it, we cannot
        return None
    else:
        raw = path.open("rb")
    return io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline=None)


class _LineLocator:
    """Finds line numbers of records by reading the file forward, on demand.

    Problems come in record order, so one forward pass serves a whole file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: Iterator[tuple[int, str]] | None = None
        self._handle: IO[str] | None = None
        self._headers_seen = 0
        self._header_line = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def _next_line(self) -> tuple[int, str] | None:
        if self._lines is None:
            self._handle = _open_text(self.path)
            self._lines = enumerate(self._handle or [], start=1)
        return next(self._lines, None)

    def locate(self, number: int, *, find_invalid: bool = False) -> _Location:
        """Header line of record ``number`` (0 where unknown).

        With ``find_invalid``, also the line and column of the record's first
        letter that is not IUPAC.
        """
        while self._headers_seen < number:
            item = self._next_line()
            if item is None:
                return _Location(0)
            if item[1].strip().startswith(">"):
                self._headers_seen += 1
                self._header_line = item[0]
        header = self._header_line
        while find_invalid and (item := self._next_line()) is not None:
            line_number, line = item
            stripped = line.strip()
            if stripped.startswith(">"):
                self._headers_seen += 1
                self._header_line = line_number
                break
            if not stripped or stripped.startswith("#"):
                continue
            bad = stripped.encode("ascii", "replace").translate(None, _VALID_BYTES)
            if bad:
                column = (
                    len(line) - len(line.lstrip()) + stripped.index(chr(bad[0])) + 1
                )
                return _Location(header, line_number, column)
        return _Location(header)


def _header_line(path: Path, number: int) -> int:
    """Line of the header of record ``number`` of ``path`` (0 if unknown)."""
    locator = _LineLocator(path)
    try:
        return locator.locate(number).header_line
    finally:
        locator.close()


def _first_non_ascii_line(path: Path) -> int:
    """Line of the first non-ASCII byte (dnaio names no line for it); 0 if none."""
    handle = _open_text(path)
    if handle is None:
        return 0
    with handle:
        for line_number, line in enumerate(handle, start=1):
            if "\ufffd" in line:
                return line_number
    return 0
