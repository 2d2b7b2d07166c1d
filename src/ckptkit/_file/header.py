"""Parse and check a checkpoint's header (no tensor bytes). Never writes.

All structural checks of the "quick" validation level start here: header length
and checksum, format and version; the tensor entries (offsets that tile the data
exactly and match the file size) and a tree that agrees with them are checked in
``entries``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from ckptkit._file import fs
from ckptkit._file.digest import check_header_checksum
from ckptkit._file.discovery import describe_foreign, looks_like_safetensors
from ckptkit._file.entries import EntrySpec, check_entries, check_tree_agrees
from ckptkit._file.format import (
    ENVELOPE_KEYS,
    FORMAT_MAGIC,
    FORMAT_VERSION,
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_HEADER,
    KEY_MIN_READER,
    KEY_PREFIX,
    LENGTH_PREFIX_BYTES,
    MAX_HEADER_BYTES,
    METADATA_KEY,
    SKELETON_ENTRY,
    parse_temp_name,
    view_limit_bytes,
)
from ckptkit._file.special_files import NotRegularFileError
from ckptkit._file.streams import read_exactly
from ckptkit._file.versions import parse_version
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointNotFoundError,
    TruncatedCheckpointError,
    UnsupportedVersionError,
)
from ckptkit.info import MigrationRecord
from ckptkit.legacy import is_torch_pickle

if TYPE_CHECKING:
    import os
    from io import FileIO
    from pathlib import Path


@dataclass(frozen=True)
class ParsedFile:
    """A checkpoint's header, checked for internal consistency."""

    path: Path
    kind: str  # "ckptkit", "safetensors" (legacy) or "torch" (legacy pickle)
    file_size: int
    data_start: int
    entries: dict[str, EntrySpec]
    header: dict[str, Any]  # ckptkit header ({} for legacy files)
    raw_metadata: dict[str, str]
    mtime_s: float  # of the file opened (what a legacy file's created_at shows)

    @property
    def is_legacy(self) -> bool:
        """True for files without a ckptkit header."""
        return self.kind != "ckptkit"


def open_checkpoint(path: Path) -> FileIO:
    """Open a checkpoint for reading; missing files and folders are errors.

    Every later read goes through this one handle, so a concurrent writer that
    renames a new file over ``path`` can never mix two files' bytes.
    """
    if parse_temp_name(path.name) is not None:
        raise CheckpointNotFoundError(
            path, "is a temporary file of an interrupted writer, not a checkpoint"
        )
    try:
        return fs.open_read(path)
    except FileNotFoundError as error:
        raise CheckpointNotFoundError(path, "file does not exist") from error
    except IsADirectoryError as error:
        reason = (
            "is a folder, not a checkpoint file; name a file in it "
            "(`ckptkit validate FOLDER` checks every checkpoint in a folder)"
        )
        raise CheckpointNotFoundError(path, reason) from error
    except NotRegularFileError as error:
        reason = f"{error.strerror}, not a checkpoint; it is never read"
        raise CheckpointNotFoundError(path, reason) from error


def _read_head(path: Path, handle: FileIO) -> tuple[os.stat_result, bytes]:
    """Return the file's status and first bytes; an empty file is damaged."""
    status = fs.fstat(handle)
    if status.st_size == 0:
        raise TruncatedCheckpointError(
            path, "file is empty (a failed copy or write); restore or recompute it"
        )
    fs.seek(handle, 0)
    return status, read_exactly(handle, LENGTH_PREFIX_BYTES + 1)


def parse_open(path: Path, handle: FileIO) -> ParsedFile:
    """Read and check a checkpoint's header from an open file (no tensor bytes).

    Raises:
        CheckpointNotFoundError: Missing file.
        CheckpointCorruptError: Any structural damage (an empty file included).
        UnsupportedVersionError: A newer container format or an invalid version.
    """
    status, head = _read_head(path, handle)
    size, mtime_s = status.st_size, status.st_mtime
    # safetensors first: a valid length prefix can begin with a pickle's bytes.
    if not looks_like_safetensors(head) and is_torch_pickle(head):
        return ParsedFile(path, "torch", size, 0, {}, {}, {}, mtime_s)
    if b"\x00" not in head[:LENGTH_PREFIX_BYTES]:
        # Every length prefix below MAX_HEADER_BYTES holds NUL bytes: this file
        # is no checkpoint at all (text, FASTA, ...). Say what it is.
        fs.seek(handle, 0)
        raise CheckpointCorruptError(path, describe_foreign(read_exactly(handle, 512)))
    if len(head) < LENGTH_PREFIX_BYTES:
        raise TruncatedCheckpointError(path, f"file has only {size} bytes")
    (header_len,) = struct.unpack("<Q", head[:LENGTH_PREFIX_BYTES])
    if header_len > min(MAX_HEADER_BYTES, size - LENGTH_PREFIX_BYTES):
        raise TruncatedCheckpointError(
            path,
            f"header claims {header_len} bytes but the file has {size}: "
            "truncated or damaged; restore it from a copy or recompute it",
        )
    fs.seek(handle, 0)
    region = read_exactly(handle, LENGTH_PREFIX_BYTES + header_len)
    is_ckptkit = f'"{KEY_PREFIX}'.encode() in region
    if is_ckptkit:
        check_header_checksum(
            path, region, what=("ckptkit header", "header"), fix="restore or recompute"
        )
    try:
        top = _strict_json(region[LENGTH_PREFIX_BYTES:].decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise CheckpointCorruptError(
            path, f"header is not valid JSON ({_short(error)}); the file is damaged"
        ) from error
    if not isinstance(top, dict):
        raise CheckpointCorruptError(
            path, "header is not a JSON object; not a checkpoint"
        )
    raw_metadata = top.pop(METADATA_KEY, None) or {}
    if not isinstance(raw_metadata, dict):
        raise CheckpointCorruptError(path, "header __metadata__ is not an object")
    data_start = LENGTH_PREFIX_BYTES + header_len
    entries = check_entries(path, top, size - data_start)
    header: dict[str, Any] = {}
    if is_ckptkit:
        header = _check_ckptkit_metadata(path, raw_metadata)
        check_tree_agrees(path, header, entries, view_limit_bytes(size))
    kind = "ckptkit" if is_ckptkit else "safetensors"
    return ParsedFile(
        path, kind, size, data_start, entries, header, raw_metadata, mtime_s
    )


def _refuse_constant(name: str) -> NoReturn:
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _strict_json(text: str) -> Any:
    """Parse JSON as ckptkit writes it: ``NaN``/``Infinity`` are a ValueError."""
    return json.loads(text, parse_constant=_refuse_constant)


def _short(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)[:200]


def _check_ckptkit_metadata(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    for key in ENVELOPE_KEYS:
        if not isinstance(raw.get(key), str):
            raise CheckpointCorruptError(
                path, f"ckptkit header field {key!r} is missing"
            )
    if raw[KEY_FORMAT] != FORMAT_MAGIC:
        raise CheckpointCorruptError(path, f"unknown container {raw[KEY_FORMAT]!r}")
    try:
        format_version = int(raw[KEY_FORMAT_VERSION])
    except ValueError as error:
        raise CheckpointCorruptError(
            path, "ckptkit format version is not a number"
        ) from error
    if format_version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            path,
            f"container format {format_version} is newer than this ckptkit understands "
            f"({FORMAT_VERSION}); upgrade ckptkit to >= {raw[KEY_MIN_READER]}",
        )
    try:
        header: dict[str, Any] = _strict_json(raw[KEY_HEADER])
        parse_version(header["version"])
        history = [MigrationRecord.from_json(r) for r in header.get("history", [])]
        checks = (
            _has_tree(header, format_version),
            isinstance(header["leaves"], list),
            isinstance(header["checksums"], dict),
            isinstance(header["metadata"], dict),
            header["status"] in ("in_progress", "complete"),
            isinstance(header.get("schema"), (str, type(None))),
        )
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        reason = f"ckptkit header is malformed ({_short(error)})"
        raise CheckpointCorruptError(path, reason) from error
    if not all(checks):
        raise CheckpointCorruptError(path, "ckptkit header is malformed")
    header["format_version"] = format_version
    header["history_records"] = tuple(history)
    return header


def _has_tree(header: dict[str, Any], format_version: int) -> bool:
    """Format 1 holds the tree in the header; format 2 names its skeleton entry."""
    if format_version < 2:  # noqa: PLR2004 - the format that moved it out
        return isinstance(header["tree"], (dict, str, bool, type(None)))
    return bool(header["skeleton"] == SKELETON_ENTRY)
