"""The step files of a ``CheckpointManager`` folder, read from the folder itself.

The folder is the truth, so whatever a killed process left is read the same way
as a tidy folder. A step is a regular file (never a symbolic link) named by
``format.step_name`` whose header passes quick validation and names that step in
its metadata. What each file version's header says is cached in memory and in the
step index beside the steps (``_index``), which is never trusted over the folder.

Files named like steps that the manager did not write are *foreign*: symbolic
links, plain torch or safetensors files, ckptkit files without step metadata or
with another step's. They are not steps, retention never deletes them, and
``restore`` passes over them. Files found damaged by a full read are remembered
here (per file version) and recorded in the folder's failure ledger.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.format import (
    MAX_STEP,
    STEP_METADATA_METRICS,
    STEP_METADATA_STEP,
    parse_step_name,
    step_name,
)
from ckptkit.ledger import FailureLedger
from ckptkit.manager._index import (
    FileKey,
    FileVerdict,
    file_key,
    load_index,
    save_index,
)
from ckptkit.manager._retention import StepRecord, metrics_from_json
from ckptkit.validation import validate

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from ckptkit.info import CheckpointInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def check_step(step: int) -> int:
    """Return ``step`` if it can number a step file.

    Raises:
        TypeError: Not an int (a bool neither).
        ValueError: Negative, or above 2**63 - 1.
    """
    if isinstance(step, bool) or not isinstance(step, int):
        msg = f"step must be an int, not {type(step).__name__}: pass int(step)"
        raise TypeError(msg)
    if not 0 <= step <= MAX_STEP:
        msg = f"step must be between 0 and 2**63 - 1 (a step counter), not {step}"
        raise ValueError(msg)
    return step


def _verdict_of(
    info: CheckpointInfo, step: int, path: Path, key: FileKey
) -> FileVerdict:
    """Classify a file whose header passed quick validation."""
    stored = info.metadata.get(STEP_METADATA_STEP)
    if info.legacy or type(stored) is not int or stored != step:
        return FileVerdict(key, None, foreign=True)
    metrics = metrics_from_json(info.metadata.get(STEP_METADATA_METRICS))
    record = StepRecord(step, path, info.status, metrics, info.schema)
    return FileVerdict(key, record)


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
        #: Whether the index may be written (only while the manager holds the folder).
        self.index_writable = True
        self._lock = threading.Lock()
        self._verdicts: dict[str, FileVerdict] | None = None  # loaded on first use
        self._dirty = False
        self._damaged: dict[str, FileKey] = {}

    def path_of(self, step: int) -> Path:
        """The file of ``step`` (whether or not it exists)."""
        return self.directory / step_name(step)

    def step_files(self) -> list[tuple[int, Path]]:
        """Regular files named like a step, oldest step first (no content check).

        Symbolic links are left out: ckptkit never writes one, and following one
        could lead out of the folder.
        """
        found: list[tuple[int, Path]] = []
        for name in fs.list_files(self.directory):
            step = parse_step_name(name)
            if step is not None and not fs.is_symlink(self.directory / name):
                found.append((step, self.directory / name))
        return sorted(found)

    def records(self, *, exclude: int | None = None) -> list[StepRecord]:
        """Steps whose header passes quick validation, oldest first, but ``exclude``.

        ``exclude`` is the step an asynchronous save is writing.
        """
        with self._lock:
            verdicts = self._cache()
            records: list[StepRecord] = []
            present: set[str] = set()
            for step, path in self.step_files():
                present.add(path.name)
                if step == exclude:
                    continue
                verdict = self._verdict(step, path)
                if verdict is not None and verdict.record is not None:
                    records.append(verdict.record)
            for gone in set(verdicts) - present:
                del verdicts[gone]
                self._dirty = True
            self._write_index()
            return records

    def _cache(self) -> dict[str, FileVerdict]:
        if self._verdicts is None:
            self._verdicts = load_index(self.directory)
        return self._verdicts

    def _verdict(self, step: int, path: Path) -> FileVerdict | None:
        """The current verdict on ``path``, or None when it is gone or damaged."""
        key = file_key(path)
        if key is None or self._damaged.get(path.name) == key:
            return None
        verdicts = self._cache()
        cached = verdicts.get(path.name)
        if cached is not None and cached.key == key:
            return cached
        # Keyed by the version stat'ed before reading: if the file changed in
        # between, the next call sees another key and reads it again.
        report = validate(path, level="quick")
        if report.ok and report.info is not None:
            verdict = _verdict_of(report.info, step, path, key)
        else:
            verdict = FileVerdict(key, None)
        verdicts[path.name] = verdict
        self._dirty = True
        return verdict

    def _write_index(self) -> None:
        """Write the index if it changed (caller holds the lock)."""
        if not self._dirty or not self.index_writable or self._verdicts is None:
            return
        self._dirty = False
        # A cache: failing to write it costs the next manager time, never a step.
        with contextlib.suppress(OSError):
            save_index(self.directory, self._verdicts)

    def note_written(self, step: int, path: Path, info: CheckpointInfo) -> None:
        """Record a step just written and fully validated (no header read needed)."""
        key = file_key(path)
        if key is None:
            return
        with self._lock:
            self._cache()[path.name] = _verdict_of(info, step, path, key)
            self._dirty = True

    def is_foreign(self, step: int, path: Path) -> bool:
        """Whether ``path`` is a file the manager did not write (see the module)."""
        if fs.is_symlink(path):
            return True
        with self._lock:
            verdict = self._verdict(step, path)
        return verdict is not None and verdict.foreign

    def record_of(self, step: int, path: Path) -> StepRecord | None:
        """The step ``path`` holds, if it is one (symbolic links never are)."""
        if fs.is_symlink(path):
            return None
        with self._lock:
            verdict = self._verdict(step, path)
        return None if verdict is None else verdict.record

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

    def delete(self, records: Iterable[StepRecord]) -> None:
        """Delete the files of ``records``.

        A file is deleted only while it is still the version read as that step:
        a file replaced since (by hand, by a symbolic link) is left alone.
        """
        deleted = False
        with self._lock:
            verdicts = self._cache()
            for record in records:
                path = record.path
                verdict = verdicts.get(path.name)
                if fs.is_symlink(path) or verdict is None or verdict.record is None:
                    continue
                if file_key(path) != verdict.key:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    fs.unlink(path)
                    deleted = True
                del verdicts[path.name]
                self._dirty = True
            if deleted:
                fs.fsync_directory(self.directory)
            self._write_index()
