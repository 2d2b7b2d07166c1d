"""FailureLedger: an append-only record of failed checkpoints, one line each.

The file is ``failed_checkpoints.txt`` in a chosen folder. Each line is
``{checkpoint_path}|{reason}|{timestamp}`` with a UTC ISO-8601 timestamp; path and
reason are escaped so that a line stays one line (docs/ckptkit/format.md, "Failure
ledger"). Appends from many processes never interleave: each line is written
whole (``streams.write_all``: one ``write`` on local disks) to a file opened with
``O_APPEND``, under an exclusive ``flock`` where the platform has one. The lock is
taken on the ledger itself, which is never removed, so there is no lock file to
unlink (the race of the system this replaces).
Nothing here deletes or rewrites a line: the ledger is an audit trail.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ckptkit._file import fs
from ckptkit._file.format import LEDGER_FILENAME, TIMESTAMP_FORMAT, utc_now_iso
from ckptkit._file.streams import write_all

if TYPE_CHECKING:
    from ckptkit.types import PathLike

_SHORT_ESCAPES = {"\\": "\\\\", "|": "\\|", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SHORT_UNESCAPES = {"\\": "\\", "|": "|", "n": "\n", "r": "\r", "t": "\t"}
# Everything a text tool could take for a line break or cannot store as UTF-8:
# control characters, NEL, the Unicode line/paragraph separators, lone surrogates.
_NEEDS_ESCAPE = re.compile("[\\\\|\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
_ESCAPE_SEQUENCE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_PIPE_OR_ESCAPE = re.compile(r"\\.|\|", re.DOTALL)
_UTF8_BOM = "\ufeff"


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"  # noqa: PLR2004


def escape_field(text: str) -> str:
    r"""Escape a path or reason so it holds no ``|`` and no line break.

    ``\`` -> ``\\``, ``|`` -> ``\|``, newline/CR/tab -> ``\n``/``\r``/``\t``,
    other control characters, NEL, U+2028/U+2029 and lone surrogates ->
    ``\xHH`` or ``\uHHHH``. Everything else is written as it is (UTF-8).
    """
    return _NEEDS_ESCAPE.sub(_escape_char, text)


def _unescape_sequence(match: re.Match[str]) -> str:
    body = match.group(1)
    if len(body) > 1:  # \xHH or \uHHHH
        return chr(int(body[1:], 16))
    # An unknown escape came from an older, unescaping writer: keep it as written.
    return _SHORT_UNESCAPES.get(body, match.group())


def unescape_field(text: str) -> str:
    """Undo :func:`escape_field`; unknown escapes are kept literally."""
    return _ESCAPE_SEQUENCE.sub(_unescape_sequence, text)


def _normalise_timestamp(timestamp: str | datetime | None) -> str:
    if timestamp is None:
        return utc_now_iso()
    if isinstance(timestamp, str):
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError as error:
            msg = f"timestamp {timestamp!r} is not ISO-8601"
            raise ValueError(msg) from error
    else:
        parsed = timestamp
    # A naive time is taken as UTC: ckptkit writes and compares UTC only.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


@dataclass(frozen=True)
class LedgerEntry:
    """One failure recorded in the ledger.

    Attributes:
        path: The checkpoint path, exactly as recorded.
        reason: Why it failed (one line a person can act on).
        timestamp: When, as UTC ISO-8601 (``2025-01-31T12:00:00.000000Z``); lines
            of older tools keep the time text they wrote.
    """

    path: str
    reason: str
    timestamp: str

    def to_json(self) -> dict[str, str]:
        """The entry as plain JSON data (``ckptkit ledger --json``).

        Returns:
            ``{"path", "reason", "timestamp"}``, unescaped.
        """
        return {"path": self.path, "reason": self.reason, "timestamp": self.timestamp}

    def to_line(self) -> str:
        """The entry as one ledger line, without the newline."""
        return f"{escape_field(self.path)}|{escape_field(self.reason)}|{self.timestamp}"


def parse_line(line: str) -> LedgerEntry | None:
    """Parse one ledger line (without its newline); None when it is malformed.

    Path and reason are split on the first and the last unescaped ``|``, so lines of
    older tools with ``|`` inside the reason still parse; the timestamp must be
    ISO-8601.
    """
    pipes = [m.start() for m in _PIPE_OR_ESCAPE.finditer(line) if m.group() == "|"]
    if len(pipes) < 2:  # noqa: PLR2004 - path|reason|timestamp
        return None
    first, last = pipes[0], pipes[-1]
    timestamp = line[last + 1 :].strip()
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return LedgerEntry(
        unescape_field(line[:first]), unescape_field(line[first + 1 : last]), timestamp
    )


def _same_path(recorded: str, wanted: str) -> bool:
    # abspath also normalises the path (``a/./b``, ``a/../b``).
    return recorded == wanted or os.path.abspath(recorded) == os.path.abspath(wanted)  # noqa: PTH100


class FailureRecorder(Protocol):
    """Anything that records failed checkpoints (:class:`FailureLedger` does).

    ``ckptkit.validate`` and ``validate_tree`` take one as ``ledger=``.
    """

    def record(self, path: PathLike, reason: str) -> object:
        """Record that ``path`` failed for ``reason``."""
        ...


@dataclass(frozen=True)
class _Contents:
    entries: list[LedgerEntry]
    malformed: list[tuple[int, str]]


class FailureLedger:
    """The failed-checkpoint ledger of one folder (``failed_checkpoints.txt``).

    Safe to share between processes: every ``record`` appends one whole line.
    Reading never fails on bad lines; they are listed in :attr:`malformed`.

    Args:
        directory: The folder holding the ledger file (created on first record).
        fsync: Flush each record to disk before ``record`` returns.

    Example:
        >>> import ckptkit, tempfile
        >>> ledger = ckptkit.FailureLedger(tempfile.mkdtemp())
        >>> _ = ledger.record("run/step-9.ckpt", "checksum mismatch | tensor 'w'")
        >>> ledger.latest("run/step-9.ckpt").reason
        "checksum mismatch | tensor 'w'"
    """

    def __init__(self, directory: PathLike, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LEDGER_FILENAME
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"FailureLedger({str(self.directory)!r})"

    def record(
        self,
        path: PathLike,
        reason: str,
        *,
        timestamp: str | datetime | None = None,
    ) -> LedgerEntry:
        """Append one failure as one line.

        Args:
            path: The checkpoint that failed (recorded as given).
            reason: Why; any text (escaped on disk, read back unchanged).
            timestamp: When (ISO-8601 text or a datetime; naive means UTC);
                now when None. Stored as UTC.

        Returns:
            The entry as written.

        Raises:
            ValueError: ``timestamp`` is not ISO-8601.
            OSError: The ledger cannot be written (permissions, full disk); a
                partly written line is cut off again.
        """
        entry = LedgerEntry(
            os.fspath(path), str(reason), _normalise_timestamp(timestamp)
        )
        line = (entry.to_line() + "\n").encode("utf-8")
        fs.mkdir(self.directory)
        handle = fs.open_append(self.path)
        try:
            fs.lock(handle, exclusive=True)
            size = fs.fstat(handle).st_size
            if size > 0:
                fs.seek(handle, -1, os.SEEK_END)
                if fs.read(handle, 1) != b"\n":
                    # A writer crashed mid-line: start ours on a fresh line so the
                    # torn one stays alone (and is reported as malformed).
                    line = b"\n" + line
            self._append(handle, line, size)
        finally:
            try:
                fs.close(handle)  # closing the file releases the lock
            finally:
                # The descriptor (and with it the lock) must go even when
                # fs.close raised: a leaked one would block every later reader
                # of the ledger in this process. A second close does nothing.
                handle.close()
        return entry

    def _append(self, handle: fs.Handle, line: bytes, size: int) -> None:
        """Append ``line`` whole, or not at all: a failed append is cut off again."""
        try:
            # One write takes the whole line on local disks; should the kernel
            # take less (a signal, a full disk), the lock keeps other writers out
            # while the rest follows.
            write_all(handle, line)
            if self._fsync:
                fs.fsync(handle)
        except OSError:
            # Still under the lock, nobody appended since: cutting the file back
            # to its old size removes our partial line. Should that fail too,
            # the torn line is read as malformed, never as an entry.
            with contextlib.suppress(OSError):
                fs.truncate(handle, size)
            raise

    def _read(self) -> _Contents:
        try:
            handle = fs.open_read(self.path)
        except FileNotFoundError:
            return _Contents([], [])
        with handle:
            fs.lock(handle, exclusive=False)
            data = fs.read(handle)
        # surrogateescape: a non-UTF-8 path written by an older tool reads back
        # as os.fsdecode would give it.
        text = data.decode("utf-8", "surrogateescape").removeprefix(_UTF8_BOM)
        lines = text.split("\n")
        unterminated = lines.pop()  # "" when the file ends with a newline
        contents = _Contents([], [])
        for number, raw in enumerate(lines, start=1):
            line = raw.removesuffix("\r")  # files edited on Windows
            if not line:
                continue
            entry = parse_line(line)
            if entry is None:
                contents.malformed.append((number, line))
            else:
                contents.entries.append(entry)
        if unterminated:
            # Only a crash mid-append leaves a last line without its newline.
            contents.malformed.append((len(lines) + 1, unterminated))
        return contents

    def entries(self) -> list[LedgerEntry]:
        """Every well-formed entry, oldest first (in the order they were appended).

        Returns:
            The entries; empty when the ledger file does not exist.
        """
        return self._read().entries

    @property
    def malformed(self) -> list[tuple[int, str]]:
        """Line number (from 1) and text of each line that could not be parsed."""
        return self._read().malformed

    def latest(self, path: PathLike) -> LedgerEntry | None:
        """The most recent entry for ``path`` (same text or same absolute path).

        Args:
            path: A checkpoint path.

        Returns:
            The last entry recorded for it, or None.
        """
        wanted = os.fspath(path)
        for entry in reversed(self.entries()):
            if _same_path(entry.path, wanted):
                return entry
        return None


__all__ = [
    "LEDGER_FILENAME",
    "FailureLedger",
    "FailureRecorder",
    "LedgerEntry",
    "escape_field",
    "parse_line",
    "unescape_field",
]
