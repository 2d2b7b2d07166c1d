"""Parse and check a checkpoint's header (no tensor bytes). Never writes.

All structural checks of the "quick" validation level live here: header length
and checksum, format and version, tensor offsets that tile the data exactly and
match the file size, and a tree that agrees with the tensors.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from ckptkit._file import fs
from ckptkit._file.digest import check_header_checksum
from ckptkit._file.discovery import describe_foreign
from ckptkit._file.format import (
    FORMAT_MAGIC,
    FORMAT_VERSION,
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_HEADER,
    KEY_HEADER_CHECKSUM,
    KEY_MIN_READER,
    KEY_PREFIX,
    LEAF_KINDS,
    LENGTH_PREFIX_BYTES,
    MAX_HEADER_BYTES,
    METADATA_KEY,
    SKELETON_ENTRY,
    TORCH_DTYPES,
    parse_temp_name,
    view_limit_bytes,
)
from ckptkit._file.leaf_views import shaped
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
class EntrySpec:
    """Where one tensor's bytes lie (offsets relative to the data start)."""

    name: str
    dtype: torch.dtype
    dtype_name: str
    shape: tuple[int, ...]
    begin: int
    end: int


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


def _corrupt(path: Path, reason: str) -> CheckpointCorruptError:
    return CheckpointCorruptError(path, reason)


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
    except fs.NotRegularFileError as error:
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
    return status, _read_exactly(handle, LENGTH_PREFIX_BYTES + 1)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) <= LENGTH_PREFIX_BYTES:
        return False
    (header_len,) = struct.unpack("<Q", head[:LENGTH_PREFIX_BYTES])
    # No check against the file size: a truncated safetensors file must still be
    # recognised as one (and reported truncated), not taken for a pickle.
    del size
    return 0 < header_len <= MAX_HEADER_BYTES and head[-1:] == b"{"


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
    if not _looks_like_safetensors(head, size) and is_torch_pickle(head):
        return ParsedFile(path, "torch", size, 0, {}, {}, {}, mtime_s)
    if b"\x00" not in head[:LENGTH_PREFIX_BYTES]:
        # Every length prefix below MAX_HEADER_BYTES holds NUL bytes: this file
        # is no checkpoint at all (text, FASTA, ...). Say what it is.
        fs.seek(handle, 0)
        raise _corrupt(path, describe_foreign(_read_exactly(handle, 512)))
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
    region = _read_exactly(handle, LENGTH_PREFIX_BYTES + header_len)
    is_ckptkit = f'"{KEY_PREFIX}'.encode() in region
    if is_ckptkit:
        check_header_checksum(
            path, region, what=("ckptkit header", "header"), fix="restore or recompute"
        )
    try:
        top = _strict_json(region[LENGTH_PREFIX_BYTES:].decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise _corrupt(
            path, f"header is not valid JSON ({_short(error)}); the file is damaged"
        ) from error
    if not isinstance(top, dict):
        raise _corrupt(path, "header is not a JSON object; not a checkpoint")
    raw_metadata = top.pop(METADATA_KEY, None) or {}
    if not isinstance(raw_metadata, dict):
        raise _corrupt(path, "header __metadata__ is not an object")
    data_start = LENGTH_PREFIX_BYTES + header_len
    entries = _check_entries(path, top, size - data_start)
    header: dict[str, Any] = {}
    if is_ckptkit:
        header = _check_ckptkit_metadata(path, raw_metadata)
        _check_tree_agrees(path, header, entries, view_limit_bytes(size))
    kind = "ckptkit" if is_ckptkit else "safetensors"
    return ParsedFile(
        path, kind, size, data_start, entries, header, raw_metadata, mtime_s
    )


def _read_exactly(handle: FileIO, count: int) -> bytes:
    """Up to ``count`` bytes: fewer only at the end of the file."""
    chunks: list[bytes] = []
    while count > 0:
        chunk = fs.read(handle, count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> NoReturn:
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _strict_json(text: str) -> Any:
    """Parse JSON as ckptkit writes it: no ``NaN``/``Infinity``.

    Raises:
        ValueError: Not JSON.
        RecursionError: Nested deeper than the parser can follow.
    """
    return json.loads(text, parse_constant=_refuse_constant)


def _short(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)[:200]


def _is_count(value: object) -> bool:
    """A JSON integer that fits int64 and is not negative (no bool, no float)."""
    return type(value) is int and 0 <= value < _INT64_LIMIT


def _counts(value: object, length: int | None = None) -> tuple[int, ...] | None:
    """``value`` as a tuple of counts (of ``length`` items, if given), else None."""
    if not isinstance(value, list) or not all(_is_count(n) for n in value):
        return None
    if length is not None and len(value) != length:
        return None
    return tuple(value)


_INT64_LIMIT = 1 << 63


def _check_entries(
    path: Path, top: dict[str, Any], data_len: int
) -> dict[str, EntrySpec]:
    entries: dict[str, EntrySpec] = {}
    for name, spec in top.items():
        fields = spec if isinstance(spec, dict) else {}
        stored = fields.get("dtype")
        dtype_name = TORCH_DTYPES.get(stored) if isinstance(stored, str) else None
        shape = _counts(fields.get("shape"))
        offsets = _counts(fields.get("data_offsets"), 2)
        if dtype_name is None or shape is None or offsets is None:
            reason = f"tensor {name!r} has a malformed header entry"
            raise _corrupt(path, reason)
        dtype = getattr(torch, dtype_name)
        begin, end = offsets
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            raise _corrupt(
                path, f"tensor {name!r}: offsets do not match its dtype and shape"
            )
        entries[name] = EntrySpec(name, dtype, dtype_name, shape, begin, end)
    position = 0
    for spec in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if spec.begin != position:
            raise _corrupt(
                path, f"tensor {spec.name!r} overlaps another or leaves a gap"
            )
        position = spec.end
    if position != data_len:
        raise TruncatedCheckpointError(
            path,
            f"tensor data should be {position} bytes but the file holds {data_len}: "
            "truncated or damaged; restore it from a copy or recompute it",
        )
    return entries


def _check_ckptkit_metadata(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    for key in (
        KEY_FORMAT,
        KEY_FORMAT_VERSION,
        KEY_MIN_READER,
        KEY_HEADER,
        KEY_HEADER_CHECKSUM,
    ):
        if not isinstance(raw.get(key), str):
            raise _corrupt(path, f"ckptkit header field {key!r} is missing")
    if raw[KEY_FORMAT] != FORMAT_MAGIC:
        raise _corrupt(path, f"unknown container {raw[KEY_FORMAT]!r}")
    try:
        format_version = int(raw[KEY_FORMAT_VERSION])
    except ValueError as error:
        raise _corrupt(path, "ckptkit format version is not a number") from error
    if format_version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            path,
            f"container format {format_version} is newer than this ckptkit understands "
            f"({FORMAT_VERSION}); upgrade ckptkit to >= {raw[KEY_MIN_READER]}",
        )
    try:
        header = _strict_json(raw[KEY_HEADER])
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
        raise _corrupt(path, reason) from error
    if not all(checks):
        raise _corrupt(path, "ckptkit header is malformed")
    header["format_version"] = format_version
    header["history_records"] = tuple(history)
    checked: dict[str, Any] = header
    return checked


def _has_tree(header: dict[str, Any], format_version: int) -> bool:
    """Format 1 holds the tree in the header; format 2 names its skeleton entry."""
    if format_version < 2:  # noqa: PLR2004 - the format that moved it out
        return isinstance(header["tree"], (dict, str, bool, type(None)))
    return bool(header["skeleton"] == SKELETON_ENTRY)


def _check_tree_agrees(
    path: Path, header: dict[str, Any], entries: dict[str, EntrySpec], limit: int
) -> None:
    if set(header["checksums"]) != set(entries):
        raise _corrupt(
            path, "the header's checksums do not list exactly the stored tensors"
        )
    used: set[str] = set()
    if header["format_version"] >= 2:  # noqa: PLR2004 - the skeleton's own entry
        skeleton = entries.get(SKELETON_ENTRY)
        if (
            skeleton is None
            or skeleton.dtype_name != "uint8"
            or len(skeleton.shape) != 1
            or skeleton.end == skeleton.begin
        ):
            raise _corrupt(path, "the state's skeleton is not stored")
        used.add(SKELETON_ENTRY)
    for index, leaf in enumerate(header["leaves"]):
        used.add(_check_leaf(path, index, leaf, entries, limit))
    if used != set(entries):
        raise _corrupt(path, "some stored tensors belong to no part of the state")


def _check_leaf(
    path: Path,
    index: int,
    leaf: object,
    entries: dict[str, EntrySpec],
    limit: int,
) -> str:
    """Check one leaf against its entry; return the entry's name."""
    name = leaf.get("entry") if isinstance(leaf, dict) else None
    entry = entries.get(name) if isinstance(name, str) else None
    if entry is None or not isinstance(leaf, dict):
        raise _corrupt(
            path, f"state leaf {index} refers to a tensor that is not stored"
        )
    if not _kind_known(leaf):
        raise _corrupt(path, f"state leaf {index} has no known kind")
    view = leaf.get("view")
    if view is not None and not _view_fits(view, entry):
        raise _corrupt(path, f"state leaf {index} reaches outside its stored bytes")
    if view is not None and _view_bytes(view) > limit:
        raise _corrupt(
            path,
            f"state leaf {index} is a view of {_view_bytes(view)} bytes over "
            f"{entry.end - entry.begin} stored bytes (zero or overlapping "
            f"strides), more than ckptkit rebuilds from a file of this size "
            f"(at most {limit} bytes); the file is damaged or crafted",
        )
    if not _leaf_fits(leaf, entry):
        raise _corrupt(
            path,
            f"state leaf {index} does not fit its stored tensor "
            f"({entry.dtype_name} {list(entry.shape)})",
        )
    return entry.name


def _leaf_fits(leaf: dict[str, Any], entry: EntrySpec) -> bool:
    """Whether ``load`` can build the leaf from its entry (tried on ``meta``).

    Only leaves that reshape or convert their entry can fail (a view, a complex128
    pair, a numpy value, a parameter that requires grad): every reader refuses
    those here, so ``validate`` and ``load`` agree on a crafted dtype or shape.
    """
    kind = leaf.get("kind")
    if kind == "tensor" and "view" not in leaf and not leaf.get("complex128"):
        return True
    try:
        base = torch.empty(entry.shape, dtype=entry.dtype, device="meta")
        tensor = shaped(base, leaf)
        if kind in ("ndarray", "npscalar"):
            torch.empty(0, dtype=tensor.dtype).numpy()  # a dtype numpy has
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        return False
    if kind == "parameter" and leaf.get("requires_grad"):
        return tensor.is_floating_point() or tensor.is_complex()
    return True


def _kind_known(leaf: dict[str, Any]) -> bool:
    kind = leaf.get("kind")
    if type(kind) is not str or kind not in LEAF_KINDS:
        return False
    return kind != "generator" or type(leaf.get("device")) is str


def _view_dtype(view: dict[str, Any]) -> torch.dtype | None:
    dtype = getattr(torch, view["dtype"], None) if type(view["dtype"]) is str else None
    return dtype if isinstance(dtype, torch.dtype) else None


def _view_bytes(view: dict[str, Any]) -> int:
    """Bytes the (checked) view describes: what materialising it would take."""
    dtype = _view_dtype(view)
    count: int = math.prod(view["shape"])
    return count * (dtype.itemsize if dtype else 1)


def _view_fits(view: object, entry: EntrySpec) -> bool:
    """Whether a leaf's view lies inside its entry's bytes (and is well formed)."""
    if not isinstance(view, dict) or not {"dtype", "shape", "stride"} <= view.keys():
        return False
    dtype = _view_dtype(view)
    shape = _counts(view["shape"])
    stride = _counts(view["stride"], None if shape is None else len(shape))
    offset = view.get("offset")
    if dtype is None or shape is None or stride is None or type(offset) is not int:
        return False
    if not _is_count(offset):
        return False
    if math.prod(shape) == 0:
        return True
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    return (last + 1) * dtype.itemsize <= entry.end - entry.begin
