"""save(): encode the state, lay out the container, write it atomically."""

from __future__ import annotations

import json
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch

from ckptkit._atomic import atomic_write
from ckptkit._clock import utc_now_iso
from ckptkit._codec import Encoded, Entry, encode_state
from ckptkit._digest import StreamingDigest, header_checksum_span, header_digest
from ckptkit._format import (
    CHECKPOINT_VERSION,
    CHECKSUM_PLACEHOLDER,
    FORMAT_MAGIC,
    FORMAT_VERSION,
    HEADER_ALIGNMENT,
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_HEADER,
    KEY_HEADER_CHECKSUM,
    KEY_MIN_READER,
    METADATA_KEY,
    MIN_READER,
    SAFETENSORS_DTYPES,
)
from ckptkit._version import library_version
from ckptkit._versions import parse_version
from ckptkit.errors import SerializationError
from ckptkit.info import CheckpointInfo, MigrationRecord, TensorInfo
from ckptkit.types import PathLike, StateTree, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

# Write big tensors in slices so a CUDA tensor never needs a full host copy.
_WRITE_SLICE_BYTES = 64 << 20
# Below this, handing a slice to the hashing thread costs more than it saves.
_THREADED_HASH_BYTES = 1 << 20


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
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


def _layout(entries: list[Entry]) -> list[Entry]:
    # Largest items first: every tensor then starts at a multiple of its itemsize,
    # so readers can map it without copying (safetensors does the same).
    return sorted(entries, key=lambda e: -e.tensor.element_size())


def _header_bytes(
    ordered: list[Entry],
    checksums: dict[str, str],
    ckpt_header: dict[str, Any],
) -> bytes:
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
    metadata = {
        KEY_FORMAT: FORMAT_MAGIC,
        KEY_FORMAT_VERSION: str(FORMAT_VERSION),
        KEY_MIN_READER: MIN_READER,
        KEY_HEADER: json.dumps(ckpt_header, separators=(",", ":"), allow_nan=False),
        KEY_HEADER_CHECKSUM: CHECKSUM_PLACEHOLDER,
    }
    text = json.dumps({METADATA_KEY: metadata, **body}, separators=(",", ":"))
    raw = text.encode("utf-8")
    return raw + b" " * (-len(raw) % HEADER_ALIGNMENT)


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
            handle.write(buffer)
            pending.result()
        else:
            digest.update(buffer)
            handle.write(buffer)
    return digest.hexdigest()


def _checked_status(version: str, status: str) -> str:
    status_value = Status(status).value
    if parse_version(version).is_legacy:
        msg = "version '0.x' is legacy, read-only; save with a real one (e.g. '1.0')"
        raise ValueError(msg)
    return status_value


def write_checkpoint(  # noqa: PLR0913 - mirrors save() plus the history
    path: PathLike,
    state: StateTree,
    *,
    version: str,
    schema: str | None,
    status: str,
    metadata: dict[str, Any] | None,
    history: Sequence[MigrationRecord] = (),
) -> CheckpointInfo:
    """Write ``state`` to ``path`` atomically (the engine behind ``save``)."""
    _checked_status(version, status)
    return write_encoded(
        path,
        encode_state(state),
        version=version,
        schema=schema,
        status=status,
        metadata=metadata,
        history=history,
    )


def write_encoded(  # noqa: PLR0913 - write_checkpoint() with the state encoded
    path: PathLike,
    encoded: Encoded,
    *,
    version: str,
    schema: str | None,
    status: str,
    metadata: dict[str, Any] | None,
    history: Sequence[MigrationRecord] = (),
) -> CheckpointInfo:
    """Write a state already split by ``encode_state`` to ``path`` atomically.

    The split lets a caller encode (and type-check) a state at once and write it
    later from copies of its entries (``CheckpointManager``'s asynchronous saves).
    """
    target = Path(path)
    status_value = _checked_status(version, status)
    created_at = utc_now_iso()
    ckpt_header = {
        "version": version,
        "schema": schema,
        "status": status_value,
        "created_at": created_at,
        "metadata": _check_metadata(metadata),
        "writer": {"library": "ckptkit", "version": library_version()},
        "history": [record.to_json() for record in history],
        "tree": encoded.tree,
        "leaves": encoded.leaves,
    }
    ordered = _layout(encoded.entries)
    placeholder = dict.fromkeys((e.name for e in ordered), CHECKSUM_PLACEHOLDER)
    header = _header_bytes(ordered, placeholder, ckpt_header)
    with atomic_write(target) as handle, ThreadPoolExecutor(1) as hasher:
        handle.write(struct.pack("<Q", len(header)) + header)
        checksums = {e.name: _write_entry(handle, e, hasher) for e in ordered}
        final = struct.pack("<Q", len(header)) + _header_bytes(
            ordered, checksums, ckpt_header
        )
        if len(final) != len(header) + 8:  # pragma: no cover - fixed-width fields
            msg = "internal error: header length changed while writing"
            raise RuntimeError(msg)
        span = header_checksum_span(final)
        if span is None:  # pragma: no cover - we just wrote the field
            msg = "internal error: header checksum field not found"
            raise RuntimeError(msg)
        value = header_digest(final, span).encode("ascii")
        final = final[: span[0]] + value + final[span[1] :]
        handle.seek(0)
        handle.write(final)
    return CheckpointInfo(
        path=target,
        format_version=FORMAT_VERSION,
        version=version,
        schema=schema,
        status=status_value,
        created_at=created_at,
        metadata=ckpt_header["metadata"],
        tensor_count=len(ordered),
        nbytes=sum(e.nbytes for e in ordered),
        legacy=False,
        history=tuple(history),
        tensors=tuple(
            TensorInfo(e.name, e.dtype, tuple(e.shape), e.nbytes) for e in ordered
        ),
        file_size=len(final) + sum(e.nbytes for e in ordered),
    )


def save(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    state: StateTree,
    *,
    version: str = CHECKPOINT_VERSION,
    schema: str | None = None,
    status: str = "complete",
    metadata: dict[str, Any] | None = None,
) -> CheckpointInfo:
    """Save a nested training state to one file, atomically and durably.

    The file is a safetensors container (tensors zero-copy, readable by plain
    safetensors tools) whose header holds the state's structure, ``version``,
    ``status``, ``schema``, ``metadata`` and a checksum per tensor. It is written to
    a temporary file in the same folder, fsynced, renamed over ``path`` and the
    folder fsynced: after a crash ``path`` holds either the old or the new
    checkpoint, whole.

    Args:
        path: Target file.
        state: Nested dicts/lists/tuples of None, bool, int, float, str, bytes,
            tensors (any device; stored from host memory), torch.dtype, torch.Size
            and numpy arrays. Tensors sharing storage are stored once.
        version: Version of the state's format (a semantic version).
        schema: Name of the state's format (for migrations), or None.
        status: ``"complete"`` or ``"in_progress"`` (partial, resumable work).
        metadata: JSON-able dict stored in the header (tuples become lists).

    Returns:
        Information about the written checkpoint.

    Raises:
        SerializationError: A leaf of unsupported type (the message names its path).
        ValueError: An invalid status or version.

    Example:
        >>> import torch, ckptkit, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "step-10.ckpt"
        >>> info = ckptkit.save(target, {"step": 10, "w": torch.zeros(3)})
        >>> info.version, info.status
        ('1.0', 'complete')
    """
    return write_checkpoint(
        path, state, version=version, schema=schema, status=status, metadata=metadata
    )
