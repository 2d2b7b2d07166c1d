"""The step index: what each step file's header said, kept beside the steps.

Ranking steps needs only each step's number, status, schema and metrics, but a
header can be megabytes (a long metrics history lives in the state's tree), and
reading it is what made a new manager's ``steps()`` slow. The index
(``.ckptkit-steps.json``) keeps those few fields per file *version* (size, mtime,
ctime and inode: an atomic replace makes a new inode, a write a new mtime and
ctime), so a new manager reads one small file instead of every header.

It is a cache, never the truth: an entry is used only for the exact file version
it describes, files that are gone are dropped, new or changed files are read from
their headers, and an index that is missing, unreadable, of another version or
fails its checksum is ignored and rebuilt. A wrong index can cost time, never a
wrong answer about a file that is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ckptkit._file import fs
from ckptkit._file.atomic import atomic_write
from ckptkit._file.digest import digest
from ckptkit._file.format import STEP_INDEX_FILENAME
from ckptkit._file.streams import write_all
from ckptkit.manager._retention import StepRecord, metrics_from_json, metrics_to_json

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

#: The file version an entry describes: size, mtime_ns, ctime_ns, inode.
FileKey = tuple[int, int, int, int]

INDEX_FORMAT: Final = "ckptkit-step-index"
INDEX_VERSION: Final = 1
# Bigger than any real index (10 million steps); a bigger file is not read.
_MAX_INDEX_BYTES = 1 << 30
_KINDS = frozenset({"step", "foreign", "unreadable"})


@dataclass(frozen=True)
class FileVerdict:
    """What one version of a step-named file is.

    ``record`` is set for a manager step; otherwise ``foreign`` tells an intact
    file that is not one (a plain torch or safetensors file, a ckptkit file
    without step metadata or with another step's) from an unreadable one.
    """

    key: FileKey
    record: StepRecord | None
    foreign: bool = False

    @property
    def kind(self) -> str:
        """``"step"``, ``"foreign"`` or ``"unreadable"``."""
        if self.record is not None:
            return "step"
        return "foreign" if self.foreign else "unreadable"


def file_key(path: Path) -> FileKey | None:
    """The version of the file at ``path``, or None when it is gone."""
    try:
        stat = fs.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _entry(verdict: FileVerdict) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": list(verdict.key), "kind": verdict.kind}
    record = verdict.record
    if record is not None:
        entry.update(
            step=record.step,
            status=record.status,
            schema=record.schema,
            metrics=metrics_to_json(record.metrics),
        )
    return entry


def _canonical(files: Mapping[str, Any]) -> bytes:
    return json.dumps(files, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _verdict(directory: Path, name: str, entry: object) -> FileVerdict:
    """One entry back as a verdict.

    Raises:
        ValueError: The entry is malformed.
    """
    if not isinstance(entry, dict) or entry.get("kind") not in _KINDS:
        raise ValueError(name)
    key = entry.get("key")
    if not isinstance(key, list) or len(key) != 4:  # noqa: PLR2004 - FileKey
        raise ValueError(name)
    if not all(type(part) is int for part in key):
        raise ValueError(name)
    file_version: FileKey = (key[0], key[1], key[2], key[3])
    if entry["kind"] != "step":
        return FileVerdict(file_version, None, foreign=entry["kind"] == "foreign")
    step, status, schema = entry.get("step"), entry.get("status"), entry.get("schema")
    if type(step) is not int or not isinstance(status, str):
        raise ValueError(name)
    if schema is not None and not isinstance(schema, str):
        raise ValueError(name)
    metrics = metrics_from_json(entry.get("metrics"))
    record = StepRecord(step, directory / name, status, metrics, schema)
    return FileVerdict(file_version, record)


def load_index(directory: Path) -> dict[str, FileVerdict]:
    """The verdicts the folder's index holds; empty when it is missing or bad."""
    path = directory / STEP_INDEX_FILENAME
    try:
        with fs.open_read(path) as handle:
            data = fs.read(handle, _MAX_INDEX_BYTES)
        top = json.loads(data.decode("utf-8"))
        if not isinstance(top, dict) or top.get("format") != INDEX_FORMAT:
            return {}
        files = top.get("files")
        if top.get("version") != INDEX_VERSION or not isinstance(files, dict):
            return {}
        if top.get("xxh3") != digest(_canonical(files)):
            return {}  # damaged (or edited): rebuilt from the headers
        return {name: _verdict(directory, name, e) for name, e in files.items()}
    except (OSError, UnicodeDecodeError, ValueError):
        return {}


def save_index(directory: Path, verdicts: Mapping[str, FileVerdict]) -> None:
    """Write the index atomically (like a checkpoint: temporary file, rename)."""
    files = {name: _entry(verdict) for name, verdict in sorted(verdicts.items())}
    top = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "files": files,
        "xxh3": digest(_canonical(files)),
    }
    data = json.dumps(top, separators=(",", ":")).encode("utf-8")
    with atomic_write(directory / STEP_INDEX_FILENAME) as handle:
        write_all(handle, data)
