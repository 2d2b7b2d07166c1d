"""Writing a checkpoint: encode the state, lay out the container, write atomically."""

from __future__ import annotations

import errno
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch

from ckptkit._file import fs
from ckptkit._file.atomic import atomic_write
from ckptkit._file.codec import Encoded, Entry, encode_state
from ckptkit._file.digest import StreamingDigest, with_header_checksum
from ckptkit._file.format import (
    CHECKSUM_PLACEHOLDER,
    FORMAT_MAGIC,
    FORMAT_VERSION,
    HEADER_ALIGNMENT,
    METADATA_KEY,
    SAFETENSORS_DTYPES,
    SKELETON_ENTRY,
    envelope,
    parse_temp_name,
    utc_now_iso,
)
from ckptkit._file.streams import write_all
from ckptkit._file.versions import library_version, parse_version
from ckptkit.errors import SerializationError
from ckptkit.info import CheckpointInfo, MigrationRecord, TensorInfo
from ckptkit.types import Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ckptkit.types import PathLike, StateTree

# Write big tensors in slices so a CUDA tensor never needs a full host copy.
_WRITE_SLICE_BYTES = 64 << 20
# Below this, handing a slice to the hashing thread costs more than it saves.
_THREADED_HASH_BYTES = 1 << 20


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """``metadata`` as plain JSON data (a copy); None is ``{}``.

    Raises:
        SerializationError: Keys that are not str, or values that are not JSON.
    """
    if metadata is None:
        return {}
    if not all(isinstance(k, str) for k in metadata):
        msg = "metadata must be a dict with str keys"
        raise SerializationError(msg)
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        msg = (
            "metadata must be plain JSON (dict, list, str, finite numbers, bool, "
            f"None): {error}"
        )
        raise SerializationError(msg) from error
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _skeleton_entry(tree: bytes) -> Entry:
    # bytearray: torch.frombuffer warns on read-only buffers.
    data = torch.frombuffer(bytearray(tree), dtype=torch.uint8)
    return Entry(SKELETON_ENTRY, data, "uint8", [len(tree)])


def _header_bytes(
    ordered: list[Entry], checksums: dict[str, str], ckpt_header: dict[str, Any]
) -> bytes:
    """Length prefix and header holding ``checksums``; its own checksum is zeros."""
    body: dict[str, Any] = {}
    offset = 0
    for entry in ordered:
        body[entry.name] = {
            "dtype": SAFETENSORS_DTYPES[entry.dtype],
            "shape": entry.shape,
            "data_offsets": [offset, offset + entry.nbytes],
        }
        offset += entry.nbytes
    ckpt_header = {**ckpt_header, "checksums": checksums}
    metadata = envelope(FORMAT_MAGIC, FORMAT_VERSION, ckpt_header)
    text = json.dumps({METADATA_KEY: metadata, **body}, separators=(",", ":"))
    raw = text.encode("utf-8")
    header = raw + b" " * (-len(raw) % HEADER_ALIGNMENT)
    return struct.pack("<Q", len(header)) + header


def _write_entry(handle: IO[bytes], entry: Entry, hasher: ThreadPoolExecutor) -> str:
    """Write one tensor's bytes and return their checksum.

    Large slices are hashed on a second thread while they are written: both
    xxhash and ``write`` release the GIL, so hashing costs no wall time.
    """
    digest = StreamingDigest()
    if not entry.tensor.numel():
        return digest.hexdigest()
    flat = entry.tensor.reshape(-1)
    if flat.stride(0) != 1:  # a strided view (t[:, 1:2]) reshapes without a copy
        flat = flat.contiguous()
    flat = flat.view(torch.uint8)
    for start in range(0, flat.numel(), _WRITE_SLICE_BYTES):
        piece = flat[start : start + _WRITE_SLICE_BYTES]
        host = piece.cpu() if piece.device.type != "cpu" else piece
        buffer = host.contiguous().numpy().data
        if len(buffer) >= _THREADED_HASH_BYTES:
            pending = hasher.submit(digest.update, buffer)
            write_all(handle, buffer)
            pending.result()
        else:
            digest.update(buffer)
            write_all(handle, buffer)
    return digest.hexdigest()


def _check_size(handle: IO[bytes], path: Path, expected: int) -> None:
    """Refuse to commit a file shorter or longer than its layout says.

    ``streams.write_all`` already never takes a short write as done; this checks the
    result itself before the file may replace an older checkpoint.
    """
    actual = fs.fstat(handle).st_size
    if actual != expected:
        reason = f"wrote {actual} of {expected} bytes; the old file is untouched"
        raise OSError(errno.EIO, reason, str(path))


def check_target(target: Path) -> None:
    """Refuse a target that ``save`` must not write: a temporary name, a folder.

    Raises:
        ValueError: The name is one of ckptkit's temporary-file names, which
            ``cleanup`` would delete.
        IsADirectoryError: ``target`` is a folder.
    """
    if parse_temp_name(target.name) is not None:
        msg = (
            f"{target}: names like this one are ckptkit's temporary files, which "
            "cleanup deletes; save under another name"
        )
        raise ValueError(msg)
    if fs.is_dir(target):
        reason = "is a folder; pass the path of a file in it (e.g. FOLDER/model.ckpt)"
        raise IsADirectoryError(errno.EISDIR, reason, str(target))


def _checked_history(
    history: Sequence[MigrationRecord],
) -> tuple[MigrationRecord, ...]:
    records: tuple[object, ...] = tuple(history)  # untyped callers pass anything
    checked: list[MigrationRecord] = []
    for record in records:
        if not isinstance(record, MigrationRecord):
            msg = (
                "history must hold ckptkit.MigrationRecord objects, not "
                f"{type(record).__name__} ({record!r})"
            )
            raise TypeError(msg)
        checked.append(record)
    return tuple(checked)


def checked_status(version: str, status: str) -> str:
    """The status value, once ``status`` and ``version`` are known to be writable.

    Raises:
        ValueError: An unknown status, or the read-only legacy version ``0.x``.
    """
    status_value = Status(status).value
    if parse_version(version).is_legacy:
        msg = "version '0.x' is legacy, read-only; save with a real one (e.g. '1.0')"
        raise ValueError(msg)
    return status_value


@dataclass(frozen=True)
class HeaderFields:
    """What the caller says about a state, written into its header.

    These are ``save``'s keyword arguments; ``status`` and ``version`` are
    checked when the file is written.
    """

    version: str
    schema: str | None = None
    status: str = "complete"
    metadata: dict[str, Any] | None = None
    history: Sequence[MigrationRecord] = ()


def write_checkpoint(
    path: PathLike, state: StateTree, fields: HeaderFields
) -> CheckpointInfo:
    """Write ``state`` to ``path`` atomically (the engine behind ``save``)."""
    checked_status(fields.version, fields.status)
    return write_encoded(path, encode_state(state), fields)


def write_encoded(
    path: PathLike, encoded: Encoded, fields: HeaderFields
) -> CheckpointInfo:
    """Write a state already split by ``encode_state`` to ``path`` atomically.

    The split lets a caller encode (and type-check) a state at once and write it
    later from copies of its entries (``CheckpointManager``'s asynchronous saves).
    """
    version, schema, status = fields.version, fields.schema, fields.status
    target = Path(path)
    check_target(target)
    status_value = checked_status(version, status)
    history = _checked_history(fields.history)
    created_at = utc_now_iso()
    ckpt_header: dict[str, Any] = {
        "version": version,
        "schema": schema,
        "status": status_value,
        "created_at": created_at,
        "metadata": check_metadata(fields.metadata),
        "writer": {"library": "ckptkit", "version": library_version()},
        "history": [record.to_json() for record in history],
        "skeleton": SKELETON_ENTRY,
        "leaves": encoded.leaves,
    }
    # Largest items first: every tensor then starts at a multiple of its itemsize,
    # so readers can map it without copying (safetensors does the same).
    entries = [*encoded.entries, _skeleton_entry(encoded.tree)]
    ordered = sorted(entries, key=lambda e: -e.tensor.element_size())
    placeholder = dict.fromkeys((e.name for e in ordered), CHECKSUM_PLACEHOLDER)
    header = _header_bytes(ordered, placeholder, ckpt_header)
    file_size = len(header) + sum(e.nbytes for e in ordered)
    with atomic_write(target) as handle, ThreadPoolExecutor(1) as hasher:
        write_all(handle, header)
        checksums = {e.name: _write_entry(handle, e, hasher) for e in ordered}
        # The real checksums, the header's own included, in place of the zeros.
        final = with_header_checksum(_header_bytes(ordered, checksums, ckpt_header))
        if len(final) != len(header):  # pragma: no cover - fixed-width fields
            msg = "internal error: header length changed while writing"
            raise RuntimeError(msg)
        fs.seek(handle, 0)
        write_all(handle, final)
        _check_size(handle, target, file_size)
    tensors = [e for e in ordered if e.name != SKELETON_ENTRY]
    return CheckpointInfo(
        path=target,
        format_version=FORMAT_VERSION,
        version=version,
        schema=schema,
        status=status_value,
        created_at=created_at,
        metadata=ckpt_header["metadata"],
        tensor_count=len(tensors),
        nbytes=sum(e.nbytes for e in tensors),
        legacy=False,
        history=tuple(history),
        tensors=tuple(
            TensorInfo(e.name, e.dtype, tuple(e.shape), e.nbytes) for e in tensors
        ),
        file_size=file_size,
    )
