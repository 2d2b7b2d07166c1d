"""Where a load reads from: a sharded folder, or a single ckptkit file.

Both are described by an :class:`~ckptkit.distributed._index.Index`: a single
file becomes an index in memory whose every tensor leaf is one chunk covering
the whole tensor, keyed by its dotted path in the state, as ``ckd.save`` keys
tensors. That is how ``ckd.load`` fills a sharded state from a single file (the
inverse of ``consolidate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs
from ckptkit._file.codec import decode_tree
from ckptkit._file.header import open_checkpoint, parse_open
from ckptkit._file.reader import info_from_parsed
from ckptkit._file.sharded import is_sharded_checkpoint
from ckptkit.distributed._chunks import ChunkReader, SingleFileReader
from ckptkit.distributed._commit import refuse_pending
from ckptkit.distributed._index import ChunkRecord, Index, TensorRecord, read_index
from ckptkit.distributed._info import info_from_index
from ckptkit.distributed._tree import LEAF_NODE_KINDS
from ckptkit.errors import CheckpointCorruptError, CheckpointNotFoundError

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit._file.header import ParsedFile
    from ckptkit.info import CheckpointInfo


@dataclass(frozen=True)
class Source:
    """A checkpoint to read, with its index (real or built from a single file)."""

    path: Path
    index: Index
    info: CheckpointInfo
    leaf_of_key: dict[str, int] | None = None  # single files: key -> leaf number

    def open_chunks(self, *, verify: bool) -> ChunkReader | SingleFileReader:
        """A reader of this checkpoint's chunks (a context manager)."""
        if self.leaf_of_key is None:
            return ChunkReader(self.path, self.index, verify=verify)
        return SingleFileReader(self.path, self.leaf_of_key, verify=verify)


def open_source(path: Path) -> Source:
    """Read the index of a sharded folder, or the header of a single ckptkit file.

    Raises:
        CheckpointNotFoundError: Nothing there (the message names a staging or
            aside folder that ``ckptkit cleanup`` would restore, if any).
        CheckpointCorruptError: A damaged index or header.
        UnsupportedVersionError: A newer format.
    """
    if is_sharded_checkpoint(path):
        index = read_index(path)
        return Source(path, index, info_from_index(path, index))
    if not fs.is_dir(path):
        refuse_pending(path)
        return _single_file_source(path)
    raise CheckpointNotFoundError(
        path, "is a folder without ckptkit-sharded.json: not a sharded checkpoint"
    )


def _leaf_geometry(
    parsed: ParsedFile, leaf: dict[str, Any]
) -> tuple[str, tuple[int, ...]]:
    view = leaf.get("view")
    if view is not None:
        return str(view["dtype"]), tuple(int(n) for n in view["shape"])
    spec = parsed.entries[leaf["entry"]]
    if leaf.get("complex128"):
        return "complex128", spec.shape[:-1]
    return spec.dtype_name, spec.shape


class _KeyWalker:
    """Gives each leaf of a single file's tree the key ``ckd.save`` would give it."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[str, str]] = {}  # leaf number -> (kind, key)
        self._names: set[str] = set()

    def walk(self, node: Any, path: tuple[object, ...]) -> None:
        if not isinstance(node, dict) or len(node) != 1:
            return
        ((kind, body),) = node.items()
        if kind in LEAF_NODE_KINDS:
            if int(body) not in self.keys:
                self.keys[int(body)] = (kind, self._unique(path))
        elif kind in ("list", "tuple"):
            for position, item in enumerate(body):
                self.walk(item, (*path, position))
        elif kind in ("dict", "odict"):
            for key, value in body:
                self.walk(value, (*path, decode_tree(key, _no_leaf)))

    def _unique(self, path: tuple[object, ...]) -> str:
        base = ".".join(str(part) for part in path) or "state"
        name, counter = base, 1
        while name in self._names:
            name, counter = f"{base}~{counter}", counter + 1
        self._names.add(name)
        return name


def _no_leaf(kind: str, index: int) -> object:
    msg = f"a dict key cannot be a {kind} ({index})"
    raise ValueError(msg)


def _single_file_source(path: Path) -> Source:
    with open_checkpoint(path) as handle:
        parsed = parse_open(path, handle)
    if parsed.kind != "ckptkit":
        raise CheckpointCorruptError(
            path, "is a legacy file; ckd.load reads ckptkit files (ckptkit.migrate it)"
        )
    header = parsed.header
    walker = _KeyWalker()
    try:
        walker.walk(header["tree"], ())
        tensors: dict[str, TensorRecord] = {}
        for number, (_, key) in walker.keys.items():
            dtype, shape = _leaf_geometry(parsed, header["leaves"][number])
            whole = ChunkRecord((0,) * len(shape), shape, -1, "")
            tensors[key] = TensorRecord(dtype, shape, (whole,))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointCorruptError(path, f"state cannot be read: {error}") from error
    leaves = [{"kind": "tensor", "key": "?"}] * len(header["leaves"])
    for number, (kind, key) in walker.keys.items():
        leaves[number] = {"kind": kind, "key": key}
    info = info_from_parsed(parsed)
    index = Index(
        version=info.version,
        schema=info.schema,
        status=info.status,
        created_at=info.created_at,
        metadata=info.metadata,
        save_id="",
        world_size=1,
        tree=header["tree"],
        leaves=tuple(leaves),
        tensors=tensors,
        shards=(),
        history=info.history,
    )
    leaf_of_key = {key: number for number, (_, key) in walker.keys.items()}
    return Source(path, index, info, leaf_of_key)
