"""Read stored chunks, whole and verified, before any byte reaches a state.

A chunk is the piece of a tensor one rank saved: an entry of its shard file, an
ordinary ckptkit file. A load that needs only part of a chunk (resharding) still
reads the whole chunk into a scratch buffer and checks its xxh3 there; only then
are the wanted bytes copied into the caller's tensor. The scratch buffer is kept
across chunks (fresh memory costs a page fault per 4 KiB) and hashing runs on a
helper thread one slice behind the reads (both release the GIL).

A single-file checkpoint is a source too: each of its tensor leaves is one chunk
covering the whole tensor (how ``ckd.load`` fills a sharded state from it).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file import fs
from ckptkit._file.digest import StreamingDigest
from ckptkit._file.format import SKELETON_ENTRY
from ckptkit._file.header import open_checkpoint, parse_open
from ckptkit._file.sharded import SHARD_METADATA_KEY, SHARD_SCHEMA
from ckptkit._file.tensors import TensorSource, build_leaf, check_digest, read_entry
from ckptkit.errors import CheckpointCorruptError, TruncatedCheckpointError

if TYPE_CHECKING:
    from io import FileIO
    from pathlib import Path

    from ckptkit._file.entries import EntrySpec
    from ckptkit._file.header import ParsedFile
    from ckptkit.distributed._index import ChunkRecord, Index, TensorRecord

_SLICE_BYTES = 8 << 20


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of an index dtype name (``"float32"``)."""
    dtype = getattr(torch, name)
    if not isinstance(dtype, torch.dtype):  # pragma: no cover - checked by the index
        msg = f"unknown dtype {name!r}"
        raise TypeError(msg)
    return dtype


def empty_tensor(record: TensorRecord, device: str | None = None) -> torch.Tensor:
    """An unfilled tensor of a stored tensor's global shape and dtype."""
    return torch.empty(record.shape, dtype=torch_dtype(record.dtype), device=device)


def stored_geometry(
    record: TensorRecord, sizes: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    """Dtype name and shape of a chunk's entry (complex128: its float64 view)."""
    if record.dtype == "complex128":
        return "float64", (*sizes, 2)
    return record.dtype, sizes


class _Shard:
    """One open shard file, its header checked against the index."""

    def __init__(self, path: Path, index: Index, rank: int) -> None:
        self.path = path
        self.handle: FileIO = open_checkpoint(path)
        try:
            self.parsed: ParsedFile = parse_open(path, self.handle)
            self._check(index, rank)
        except BaseException:
            self.handle.close()
            raise

    def _check(self, index: Index, rank: int) -> None:
        parsed = self.parsed
        expected = index.shard(rank).size
        if parsed.file_size != expected:
            reason = (
                f"shard is {parsed.file_size} bytes but the index says {expected}: "
                "truncated or replaced; restore the checkpoint folder or save again"
            )
            raise TruncatedCheckpointError(self.path, reason)
        stamp = parsed.header.get("metadata", {}).get(SHARD_METADATA_KEY)
        if (
            parsed.kind != "ckptkit"
            or parsed.header.get("schema") != SHARD_SCHEMA
            or stamp != {"save_id": index.save_id, "rank": rank}
        ):
            reason = (
                "shard belongs to another save (its header does not match the index)"
            )
            raise CheckpointCorruptError(self.path, reason)
        skeleton = parsed.entries.get(SKELETON_ENTRY)
        if skeleton is not None:
            # No chunk read covers the shard's own skeleton (a few bytes): check it
            # here, so that one flipped bit anywhere in a shard is found.
            read_entry(self.handle, parsed, skeleton, verify=True)

    def entry(self, name: str, dtype: str, shape: tuple[int, ...]) -> EntrySpec:
        spec = self.parsed.entries.get(name)
        if spec is None or spec.dtype_name != dtype or spec.shape != shape:
            reason = f"entry {name!r} is missing or does not match the index"
            raise CheckpointCorruptError(self.path, reason)
        return spec


class ChunkReader:
    """Reads the chunks of a sharded checkpoint folder (each shard opened once)."""

    def __init__(self, folder: Path, index: Index, *, verify: bool) -> None:
        self.folder, self.index, self.verify = folder, index, verify
        self._shards: dict[int, _Shard] = {}
        self._scratch = torch.empty(0, dtype=torch.uint8)
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="ckptkit-verify")

    def close(self) -> None:
        """Close every shard file and stop the hashing thread."""
        for shard in self._shards.values():
            shard.handle.close()
        self._shards.clear()
        self._hasher.shutdown()

    def shard(self, rank: int) -> _Shard:
        if rank not in self._shards:
            path = self.folder / self.index.shard(rank).file
            self._shards[rank] = _Shard(path, self.index, rank)
        return self._shards[rank]

    def read_chunk(self, key: str, chunk: ChunkRecord) -> torch.Tensor:
        """The whole chunk, verified; valid until the next ``read_chunk``.

        Raises:
            ChecksumMismatchError: The chunk's bytes do not match (names the shard).
            CheckpointCorruptError: The shard or its header is damaged or foreign.
        """
        record = self.index.tensors[key]
        dtype, shape = stored_geometry(record, chunk.sizes)
        shard = self.shard(chunk.rank)
        spec = shard.entry(chunk.entry, dtype, shape)
        nbytes = spec.end - spec.begin
        if self._scratch.numel() < nbytes:
            self._scratch = torch.empty(0, dtype=torch.uint8)  # free before growing
            self._scratch = torch.empty(nbytes, dtype=torch.uint8)
        flat = self._scratch[:nbytes]
        if nbytes:
            view = flat.numpy().data
            start = shard.parsed.data_start + spec.begin
            digest = self._read_into(shard, spec.name, start, view)
            if digest is not None:
                check_digest(shard.parsed, spec, digest)
        elif self.verify:
            check_digest(shard.parsed, spec, StreamingDigest().hexdigest())
        data = flat.view(torch_dtype(dtype)).view(shape)
        return torch.view_as_complex(data) if record.dtype == "complex128" else data

    def _read_into(
        self, shard: _Shard, name: str, start: int, view: memoryview
    ) -> str | None:
        digest = StreamingDigest() if self.verify else None
        pending: Future[None] | None = None
        handle = shard.handle
        fs.seek(handle, start)
        position = 0
        while position < len(view):
            count = fs.read_into(handle, view[position : position + _SLICE_BYTES])
            if not count:
                raise TruncatedCheckpointError(
                    shard.path, f"file ends inside tensor {name!r}"
                )
            if digest is not None:
                if pending is not None:
                    pending.result()
                pending = self._hasher.submit(
                    digest.update, view[position : position + count]
                )
            position += count
        if pending is not None:
            pending.result()
        return None if digest is None else digest.hexdigest()


class SingleFileReader:
    """Reads the tensor leaves of a single ckptkit file as one chunk each."""

    def __init__(
        self, path: Path, leaf_of_key: dict[str, int], *, verify: bool
    ) -> None:
        self.path = path
        self._leaf_of_key = leaf_of_key
        self.handle: FileIO = open_checkpoint(path)
        self.parsed = parse_open(path, self.handle)
        self._source = TensorSource(
            self.parsed, self.handle, verify=verify, use_mmap=False
        )

    def close(self) -> None:
        self.handle.close()

    def read_chunk(self, key: str, chunk: ChunkRecord) -> torch.Tensor:
        """The whole tensor leaf ``key`` (``chunk`` covers all of it)."""
        del chunk
        index = self._leaf_of_key[key]
        leaf: dict[str, Any] = self.parsed.header["leaves"][index]
        # A tensor whatever the leaf's kind (numpy value, parameter): DCP fills it.
        tensor = build_leaf(self._source, {**leaf, "kind": "tensor"})
        if not isinstance(tensor, torch.Tensor):  # pragma: no cover - kind "tensor"
            msg = "internal error: a tensor leaf did not build a tensor"
            raise TypeError(msg)
        return tensor
