"""The step files of a ``CheckpointManager`` folder, read from the folder itself.

There is no index: the folder is the truth, so whatever a killed process left is
read the same way as a tidy folder. A step is a file named by
``_format.step_name`` whose header passes quick validation; each header is read
once per file version (size, mtime, inode: an atomic replace changes the inode).
Files found damaged by a full read are remembered here (per file version) and
recorded in the folder's failure ledger.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.format import (
    STEP_METADATA_METRICS,
    STEP_METADATA_STEP,
    parse_step_name,
    step_name,
)
from ckptkit.ledger import FailureLedger
from ckptkit.manager._retention import StepRecord, metrics_from_json
from ckptkit.validation import validate

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

#: What changes whenever a file is rewritten: (size, mtime in ns, inode).
FileKey = tuple[int, int, int]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def file_key(path: Path) -> FileKey | None:
    """The :data:`FileKey` of ``path``; None when it (or its folder) is gone."""
    try:
        stat = fs.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def check_step(step: int) -> int:
    """Return ``step`` if it can number a step file.

    Raises:
        TypeError: Not an int (a bool neither).
        ValueError: Negative.
    """
    if isinstance(step, bool) or not isinstance(step, int):
        msg = f"step must be an int, not {type(step).__name__}"
        raise TypeError(msg)
    if step < 0:
        msg = f"step must be >= 0, not {step}"
        raise ValueError(msg)
    return step


def _read_record(path: Path, step: int) -> tuple[StepRecord | None, bool]:
    """Read a step file's header.

    Returns the record (None unless quick validation passes) and whether the file
    is intact but holds another step (renamed by hand).
    """
    report = validate(path, level="quick")
    if not report.ok or report.info is None:
        return None, False
    metadata = report.info.metadata
    stored = metadata.get(STEP_METADATA_STEP)
    if stored is not None and (type(stored) is not int or stored != step):
        return None, True
    metrics = metrics_from_json(metadata.get(STEP_METADATA_METRICS))
    return StepRecord(step, path, report.info.status, metrics), False


def _time_ns(timestamp: str) -> int | None:
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // _MICROSECOND
    return int(micros) * 1000


class StepFolder:
    """Step files of one folder, with their headers cached per file version."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ledger = FailureLedger(directory)
        self._lock = threading.Lock()
        self._headers: dict[str, tuple[FileKey, StepRecord | None, bool]] = {}
        self._damaged: dict[str, FileKey] = {}

    def path_of(self, step: int) -> Path:
        """The file of ``step`` (whether or not it exists)."""
        return self.directory / step_name(step)

    def step_files(self) -> list[tuple[int, Path]]:
        """Every file named like a step, oldest step first (no content check)."""
        found: list[tuple[int, Path]] = []
        for name in fs.list_files(self.directory):
            step = parse_step_name(name)
            if step is not None:
                found.append((step, self.directory / name))
        return sorted(found)

    def records(self, *, exclude: int | None = None) -> list[StepRecord]:
        """Steps whose header passes quick validation, oldest first.

        Args:
            exclude: A step not to report (the one an asynchronous save is writing).
        """
        with self._lock:
            records: list[StepRecord] = []
            for step, path in self.step_files():
                if step == exclude:
                    continue
                record = self._record(step, path)
                if record is not None:
                    records.append(record)
            return records

    def _record(self, step: int, path: Path) -> StepRecord | None:
        key = file_key(path)
        if key is None or self._damaged.get(path.name) == key:
            return None
        return self._header(step, path, key)[0]

    def _header(
        self, step: int, path: Path, key: FileKey
    ) -> tuple[StepRecord | None, bool]:
        cached = self._headers.get(path.name)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        record, misnamed = _read_record(path, step)
        # Keyed by the version read before validating: if the file changed in
        # between, the next call sees another key and reads it again.
        self._headers[path.name] = (key, record, misnamed)
        return record, misnamed

    def holds_another_step(self, step: int, path: Path) -> bool:
        """Whether ``path`` is an intact checkpoint of a step other than ``step``."""
        key = file_key(path)
        if key is None:
            return False
        with self._lock:
            return self._header(step, path, key)[1]

    def is_known_damaged(self, path: Path) -> bool:
        """Whether this version of ``path`` was already found damaged."""
        key = file_key(path)
        with self._lock:
            return key is not None and self._damaged.get(path.name) == key

    def mark_damaged(self, path: Path, reason: str) -> None:
        """Remember this version of ``path`` as damaged; record it in the ledger.

        A ledger line already written for this file version with the same reason
        (by an earlier process) is not repeated.
        """
        key = file_key(path)
        if key is not None:
            with self._lock:
                self._damaged[path.name] = key
        latest = self.ledger.latest(path)
        if latest is not None and latest.reason == reason and key is not None:
            recorded_ns = _time_ns(latest.timestamp)
            if recorded_ns is not None and recorded_ns >= key[1]:
                return
        self.ledger.record(path, reason)

    def delete(self, steps: Iterable[int]) -> list[int]:
        """Delete the files of ``steps``; return those that were there."""
        deleted: list[int] = []
        for step in steps:
            path = self.path_of(step)
            try:
                fs.unlink(path)
            except FileNotFoundError:
                continue
            deleted.append(step)
            with self._lock:
                self._headers.pop(path.name, None)
        if deleted:
            fs.fsync_directory(self.directory)
        return deleted
