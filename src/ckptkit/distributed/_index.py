"""The index of a sharded checkpoint: its global metadata, as checksummed JSON.

The index file is one JSON object with the same five keys a single ckptkit file
carries in its safetensors ``__metadata__`` (docs/ckptkit/format.md, section 2): format,
format version, oldest reader, the header as a JSON *string*, and the xxh3 of the
file with its own 16 hex digits zeroed. Keeping the header a string means no
caller data can spell the checksum key at the top level, so the field occurs once.
The header holds what DCP keeps in its pickled ``.metadata`` (every tensor's
global shape and chunks, where each chunk is stored) plus ckptkit's state tree,
version, status, schema, metadata and the list of shard files with their sizes.
No torch here: ``cleanup`` and discovery read indexes without it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs
from ckptkit._file.digest import check_header_checksum, with_header_checksum
from ckptkit._file.format import (
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_HEADER,
    KEY_MIN_READER,
    envelope,
)
from ckptkit._file.sharded import (
    INDEX_FILENAME,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    shard_name,
)
from ckptkit._file.streams import write_all
from ckptkit._file.versions import parse_version
from ckptkit.distributed._info import ShardedCheckpointInfo, ShardInfo
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointNotFoundError,
    UnsupportedVersionError,
)
from ckptkit.info import MigrationRecord, TensorInfo
from ckptkit.types import Status

if TYPE_CHECKING:
    from pathlib import Path

#: Item size of every dtype a sharded tensor may have: safetensors' own, and
#: complex128 (stored as its float64 real view, one trailing dimension of 2, as
#: in single files).
ITEMSIZES = {
    "bool": 1, "uint8": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4,
    "uint32": 4, "int64": 8, "uint64": 8, "float16": 2, "bfloat16": 2,
    "float32": 4, "float64": 8, "complex64": 8, "float8_e4m3fn": 1,
    "float8_e5m2": 1, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1, "complex128": 16,
}  # fmt: skip
LEAF_KINDS = ("tensor", "ndarray", "npscalar")


@dataclass(frozen=True)
class ChunkRecord:
    """One stored piece of a tensor: a box of it, in one shard file entry."""

    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    rank: int
    entry: str

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the index."""
        return {
            "offsets": list(self.offsets),
            "sizes": list(self.sizes),
            "shard": self.rank,
            "entry": self.entry,
        }


@dataclass(frozen=True)
class TensorRecord:
    """A tensor of the state: global dtype and shape, and where its chunks lie."""

    dtype: str
    shape: tuple[int, ...]
    chunks: tuple[ChunkRecord, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEMSIZES[self.dtype]


@dataclass(frozen=True)
class Index:
    """The decoded header of an index file (docs/ckptkit/distributed.md, "On disk")."""

    version: str
    schema: str | None
    status: str
    created_at: str
    metadata: dict[str, Any]
    save_id: str
    world_size: int
    tree: Any
    leaves: tuple[dict[str, Any], ...]
    tensors: dict[str, TensorRecord]
    shards: tuple[ShardInfo, ...]
    history: tuple[MigrationRecord, ...] = ()
    writer: dict[str, Any] = field(default_factory=dict)

    def shard(self, rank: int) -> ShardInfo:
        """The shard file written by ``rank`` (one exists after ``index_problem``)."""
        return {shard.rank: shard for shard in self.shards}[rank]


def _header_json(index: Index) -> dict[str, Any]:
    return {
        "version": index.version,
        "schema": index.schema,
        "status": index.status,
        "created_at": index.created_at,
        "metadata": index.metadata,
        "writer": index.writer,
        "history": [record.to_json() for record in index.history],
        "save_id": index.save_id,
        "world_size": index.world_size,
        "tree": index.tree,
        "leaves": list(index.leaves),
        "tensors": {
            key: {
                "dtype": record.dtype,
                "shape": list(record.shape),
                "chunks": [chunk.to_json() for chunk in record.chunks],
            }
            for key, record in index.tensors.items()
        },
        "shards": [shard.to_json() for shard in index.shards],
    }


def encode_index(index: Index) -> bytes:
    """The bytes of the index file, checksum included."""
    top = envelope(INDEX_FORMAT, INDEX_FORMAT_VERSION, _header_json(index))
    raw = (json.dumps(top, separators=(",", ":")) + "\n").encode("utf-8")
    return with_header_checksum(raw)


def decode_index(path: Path, data: bytes) -> Index:
    """Parse and check an index file's bytes (``path`` names it in errors).

    Raises:
        CheckpointCorruptError: Damage of any kind (checksum, JSON, structure).
        UnsupportedVersionError: An index format newer than this ckptkit.
    """
    check_header_checksum(
        path, data, what=("index", "index"), fix="restore it or save again"
    )
    try:
        top = json.loads(data.decode("utf-8"))
        _check_format(path, top)
        return _index_from_json(json.loads(top[KEY_HEADER]))
    except (CheckpointCorruptError, UnsupportedVersionError):
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        reason = f"index is malformed ({type(error).__name__}: {error})"
        raise CheckpointCorruptError(path, reason.splitlines()[0]) from error


def _check_format(path: Path, top: dict[str, Any]) -> None:
    if top[KEY_FORMAT] != INDEX_FORMAT:
        raise CheckpointCorruptError(path, f"unknown index format {top[KEY_FORMAT]!r}")
    format_version = int(top[KEY_FORMAT_VERSION])
    if format_version > INDEX_FORMAT_VERSION:
        raise UnsupportedVersionError(
            path,
            f"sharded format {format_version} is newer than this ckptkit "
            f"understands ({INDEX_FORMAT_VERSION}); upgrade ckptkit to >= "
            f"{top[KEY_MIN_READER]}",
        )


def _ints(values: Any) -> tuple[int, ...]:
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        msg = f"expected a list of ints, not {str(values)[:40]}"
        raise TypeError(msg)
    return tuple(values)


def _tensor_from_json(body: dict[str, Any]) -> TensorRecord:
    chunks = tuple(
        ChunkRecord(
            _ints(chunk["offsets"]),
            _ints(chunk["sizes"]),
            int(chunk["shard"]),
            str(chunk["entry"]),
        )
        for chunk in body["chunks"]
    )
    return TensorRecord(str(body["dtype"]), _ints(body["shape"]), chunks)


def _index_from_json(header: dict[str, Any]) -> Index:
    parse_version(header["version"])
    status = Status(header["status"]).value
    if not isinstance(header["metadata"], dict):
        msg = "metadata is not an object"
        raise TypeError(msg)
    return Index(
        version=str(header["version"]),
        schema=header["schema"] if header["schema"] is None else str(header["schema"]),
        status=status,
        created_at=str(header["created_at"]),
        metadata=header["metadata"],
        save_id=str(header["save_id"]),
        world_size=int(header["world_size"]),
        tree=header["tree"],
        leaves=tuple(dict(leaf) for leaf in header["leaves"]),
        tensors={
            str(key): _tensor_from_json(body) for key, body in header["tensors"].items()
        },
        shards=tuple(
            ShardInfo(str(s["file"]), int(s["rank"]), int(s["size"]))
            for s in header["shards"]
        ),
        history=tuple(MigrationRecord.from_json(r) for r in header["history"]),
        writer=dict(header.get("writer", {})),
    )


def index_problem(index: Index) -> str | None:
    """The first structural inconsistency of a decoded index, else None."""
    ranks = [shard.rank for shard in index.shards]
    if index.world_size < 1 or len(set(ranks)) != len(ranks):
        return "shard list is inconsistent"
    for shard in index.shards:
        if shard.file != shard_name(shard.rank) or shard.size < 0:
            return f"shard entry {shard.file!r} is malformed"
    for number, leaf in enumerate(index.leaves):
        if leaf.get("kind") not in LEAF_KINDS or leaf.get("key") not in index.tensors:
            return f"state leaf {number} refers to a tensor that is not stored"
    used = {leaf["key"] for leaf in index.leaves}
    for key, record in index.tensors.items():
        problem = _tensor_problem(record, set(ranks))
        if problem is not None:
            return f"tensor {key!r}: {problem}"
        if key not in used:
            return f"tensor {key!r} belongs to no part of the state"
    return None


def _tensor_problem(record: TensorRecord, ranks: set[int]) -> str | None:
    if record.dtype not in ITEMSIZES or any(n < 0 for n in record.shape):
        return "unknown dtype or negative shape"
    ndim = len(record.shape)
    volume = 0
    for chunk in record.chunks:
        if len(chunk.offsets) != ndim or len(chunk.sizes) != ndim:
            return "a chunk has the wrong number of dimensions"
        if chunk.rank not in ranks:
            return f"a chunk lies in shard {chunk.rank}, which is not listed"
        inside = all(
            o >= 0 and s >= 0 and o + s <= n
            for o, s, n in zip(chunk.offsets, chunk.sizes, record.shape, strict=True)
        )
        if not inside:
            return "a chunk reaches outside the tensor"
        volume += math.prod(chunk.sizes)
    if volume != math.prod(record.shape) or _overlapping(record.chunks):
        return "its chunks do not tile it exactly (missing or overlapping pieces)"
    return None


def _overlapping(chunks: tuple[ChunkRecord, ...]) -> bool:
    boxes = [c for c in chunks if math.prod(c.sizes)]
    return any(
        all(
            a < b + m and b < a + n
            for a, n, b, m in zip(
                first.offsets, first.sizes, second.offsets, second.sizes, strict=True
            )
        )
        for first, second in itertools.combinations(boxes, 2)
    )


def read_index(folder: Path) -> Index:
    """Read, check and decode the index of a sharded checkpoint folder.

    Raises:
        CheckpointNotFoundError: No index file (not a committed checkpoint).
        CheckpointCorruptError: A damaged or inconsistent index.
        UnsupportedVersionError: A newer index format.
    """
    path = folder / INDEX_FILENAME
    try:
        with fs.open_read(path) as handle:
            data = fs.read(handle)
    except FileNotFoundError as error:
        raise CheckpointNotFoundError(
            folder, f"no {INDEX_FILENAME}: not a committed sharded checkpoint"
        ) from error
    except NotADirectoryError as error:
        raise CheckpointNotFoundError(folder, "is not a folder") from error
    if not data:
        raise CheckpointCorruptError(path, "index file is empty; restore or save again")
    index = decode_index(path, data)
    problem = index_problem(index)
    if problem is not None:
        raise CheckpointCorruptError(path, f"index is inconsistent: {problem}")
    return index


def write_index(folder: Path, index: Index) -> None:
    """Write the index into a (staging) folder as a new file, fsynced.

    Raises:
        FileExistsError: The folder has an index already.
        OSError: The write or fsync failed (the partial file is removed).
    """
    path = folder / INDEX_FILENAME
    handle = fs.open_new(path)
    try:
        write_all(handle, encode_index(index))
        fs.fsync(handle)
        fs.close(handle)
    except BaseException:
        # The handle's own close, as in atomic_write: the descriptor is released
        # even when fs.close failed, and the partial file goes whatever it says.
        with contextlib.suppress(OSError):
            handle.close()
        fs.unlink(path, missing_ok=True)
        raise


def file_size(path: Path) -> int | None:
    """Size of a file (an index, a shard), or None when it does not exist."""
    try:
        return fs.stat(path).st_size
    except FileNotFoundError:
        return None


def info_from_index(folder: Path, index: Index) -> ShardedCheckpointInfo:
    """The public information of a sharded checkpoint, from its decoded index."""
    index_size = file_size(folder / INDEX_FILENAME) or 0
    tensors = tuple(
        TensorInfo(key, record.dtype, record.shape, record.nbytes)
        for key, record in index.tensors.items()
    )
    return ShardedCheckpointInfo(
        path=folder,
        format_version=INDEX_FORMAT_VERSION,
        version=index.version,
        schema=index.schema,
        status=index.status,
        created_at=index.created_at,
        metadata=index.metadata,
        tensor_count=len(tensors),
        nbytes=sum(tensor.nbytes for tensor in tensors),
        legacy=False,
        history=index.history,
        tensors=tensors,
        file_size=index_size + sum(shard.size for shard in index.shards),
        world_size=index.world_size,
        shards=index.shards,
    )
