"""The step folders of a sharded ``CheckpointManager``, read from the folder itself.

As for single-file steps (``_steps``) there is no index of steps: a step
is a folder named ``step-000000000123`` holding a committed sharded checkpoint
whose index is intact and records that step. Each index is read once per
version of its file (size, mtime, inode: a commit renames a new folder in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.format import STEP_METADATA_METRICS, STEP_METADATA_STEP
from ckptkit._file.sharded import (
    INDEX_FILENAME,
    parse_step_dir_name,
    step_dir_name,
)
from ckptkit.distributed._commit import delete_checkpoint
from ckptkit.distributed._index import read_index
from ckptkit.errors import CheckpointError
from ckptkit.ledger import FailureLedger
from ckptkit.manager._index import FileKey, file_key
from ckptkit.manager._retention import StepRecord, metrics_from_json

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


def _index_key(folder: Path) -> FileKey | None:
    return file_key(folder / INDEX_FILENAME)


def _read_record(folder: Path, step: int) -> StepRecord | None:
    try:
        index = read_index(folder)
    except CheckpointError:
        return None
    stored = index.metadata.get(STEP_METADATA_STEP)
    if stored is not None and (type(stored) is not int or stored != step):
        return None  # renamed by hand: not this step
    metrics = metrics_from_json(index.metadata.get(STEP_METADATA_METRICS))
    return StepRecord(step, folder, index.status, metrics)


class ShardedStepFolder:
    """Step folders of one run, with their indexes cached per file version."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ledger = FailureLedger(directory)
        self._records: dict[str, tuple[FileKey, StepRecord | None]] = {}
        self._damaged: dict[str, FileKey] = {}

    def path_of(self, step: int) -> Path:
        """The folder of ``step`` (whether or not it exists)."""
        return self.directory / step_dir_name(step)

    def step_folders(self) -> list[tuple[int, Path]]:
        """Every folder named like a step, oldest first (no content check)."""
        found = []
        for name in fs.list_names(self.directory):
            step = parse_step_dir_name(name)
            if step is not None and fs.is_dir(self.directory / name):
                found.append((step, self.directory / name))
        return sorted(found)

    def records(self, *, exclude: int | None = None) -> list[StepRecord]:
        """Steps whose index is intact, oldest first (``exclude``: one in flight)."""
        records = []
        for step, folder in self.step_folders():
            if step == exclude:
                continue
            key = _index_key(folder)
            if key is None or self._damaged.get(folder.name) == key:
                continue
            cached = self._records.get(folder.name)
            if cached is None or cached[0] != key:
                cached = (key, _read_record(folder, step))
                self._records[folder.name] = cached
            if cached[1] is not None:
                records.append(cached[1])
        return records

    def is_known_damaged(self, folder: Path) -> bool:
        """Whether this version of ``folder`` was already found damaged."""
        key = _index_key(folder)
        return key is not None and self._damaged.get(folder.name) == key

    def mark_damaged(self, folder: Path, reason: str, *, record: bool) -> None:
        """Remember ``folder`` as damaged; ``record`` it in the ledger (one rank)."""
        key = _index_key(folder)
        if key is not None:
            self._damaged[folder.name] = key
        if record:
            self.ledger.record(folder, reason)

    def delete(self, steps: Iterable[int]) -> None:
        """Delete the folders of ``steps`` (those that are there)."""
        for step in steps:
            folder = self.path_of(step)
            if fs.lexists(folder):
                delete_checkpoint(folder)
                self._records.pop(folder.name, None)
