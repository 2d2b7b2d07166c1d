"""Where a load reads from: a sharded folder, or a single ckptkit file.

Both are described by an :class:`~ckptkit.distributed._index.Index`: a single
file becomes an index in memory whose every tensor leaf is one chunk covering
the whole tensor, keyed by its dotted path in the state, as ``ckd.save`` keys
tensors. That is how ``ckd.load`` fills a sharded state from a single file (the
inverse of ``consolidate``).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs
from ckptkit._file.header import open_checkpoint, parse_open
from ckptkit._file.reader import info_from_parsed, read_structure
from ckptkit._file.sharded import is_sharded_checkpoint
from ckptkit._file.skeleton import LeafRef, Opaque, materialize
from ckptkit._file.tensor_leaves import path_text
from ckptkit._file.tree_v1 import Encoder, leaf_kinds
from ckptkit._file.values import UnresolvedValueError
from ckptkit.distributed._chunks import ChunkReader, SingleFileReader
from ckptkit.distributed._commit import refuse_pending
from ckptkit.distributed._index import (
    ChunkRecord,
    Index,
    TensorRecord,
    info_from_index,
    read_index,
)
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointIncompatibleError,
    CheckpointNotFoundError,
    SerializationError,
)

if TYPE_CHECKING:
    from io import FileIO
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

    def open_chunks(self, *, verify: bool) -> closing[ChunkReader | SingleFileReader]:
        """A reader of this checkpoint's chunks, closed at the end of a ``with``."""
        if self.leaf_of_key is None:
            return closing(ChunkReader(self.path, self.index, verify=verify))
        return closing(SingleFileReader(self.path, self.leaf_of_key, verify=verify))


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


# Leaf kinds of a single file that fill a tensor of a sharded state, and their
# index node kinds (a parameter fills a tensor like any tensor).
_FILLABLE = {
    "tensor": "tensor",
    "parameter": "tensor",
    "ndarray": "ndarray",
    "npscalar": "npscalar",
}


class _FileTreeEncoder(Encoder):
    """A single file's state structure as an index tree, keyed as ``ckd.save`` keys.

    Each tensor leaf gets the key ``ckd.save`` would give it (its dotted path);
    values a sharded state cannot hold (format 2's datetimes, paths, sets,
    generators ...) are refused: ``ckptkit.load`` reads such a file.
    """

    def __init__(self, kinds: list[Any]) -> None:
        super().__init__()
        self._kinds = kinds  # the file's leaf kinds, by leaf number
        self.numbers: dict[str, int] = {}  # key -> leaf number in the file
        self._key_of: dict[int, int] = {}  # leaf number in the file -> ours
        self.tree: Any = None

    def encode(self, value: Any, path: tuple[object, ...]) -> Any:
        kind = type(value)
        if kind is LeafRef:
            return self._leaf(value.index, path)
        if kind is Opaque:
            value = materialize(value, _no_leaf)
        elif kind is set or kind is frozenset:
            msg = f"{path_text(path)} is a {kind.__name__}"
            raise SerializationError(msg)
        return super().encode(value, path)

    def _leaf(self, number: int, path: tuple[object, ...]) -> Any:
        kind = self._kinds[number]
        if kind not in _FILLABLE:
            msg = f"{path_text(path)} is a leaf of kind {kind!r}"
            raise SerializationError(msg)
        if number not in self._key_of:
            key = self._unique_name(path)
            self._key_of[number] = len(self.leaves)
            self.leaves.append({"kind": _FILLABLE[kind], "key": key})
            self.numbers[key] = number
        return {_FILLABLE[kind]: self._key_of[number]}


def _no_leaf(index: int) -> object:
    msg = f"a tensor (leaf {index}) is held inside a value that is not a container"
    raise SerializationError(msg)


def _index_tree(parsed: ParsedFile, handle: FileIO) -> _FileTreeEncoder:
    """Encode the file's state structure (tensors not read) as an index tree."""
    structure = read_structure(parsed, handle)
    leaves = parsed.header["leaves"]
    if parsed.header["format_version"] < 2:  # noqa: PLR2004
        leaves = leaf_kinds(parsed.header["tree"], leaves)
    encoder = _FileTreeEncoder([leaf.get("kind") for leaf in leaves])
    try:
        encoder.tree = encoder.encode(structure, ())
    except (SerializationError, UnresolvedValueError) as error:
        reason = (
            f"{error}, which ckd.load cannot fill into a sharded state; load this "
            "file with ckptkit.load"
        )
        raise CheckpointIncompatibleError(parsed.path, reason) from error
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        reason = f"state cannot be rebuilt: {error}".splitlines()[0]
        raise CheckpointCorruptError(parsed.path, reason) from error
    return encoder


def _single_file_source(path: Path) -> Source:
    with open_checkpoint(path) as handle:
        parsed = parse_open(path, handle)
        if parsed.kind != "ckptkit":
            raise CheckpointCorruptError(
                path,
                "is a legacy file; ckd.load reads ckptkit files (ckptkit.migrate it)",
            )
        encoder = _index_tree(parsed, handle)
    header = parsed.header
    tensors: dict[str, TensorRecord] = {}
    try:
        for key, number in encoder.numbers.items():
            dtype, shape = _leaf_geometry(parsed, header["leaves"][number])
            whole = ChunkRecord((0,) * len(shape), shape, -1, "")
            tensors[key] = TensorRecord(dtype, shape, (whole,))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointCorruptError(path, f"state cannot be read: {error}") from error
    info = info_from_parsed(parsed)
    index = Index(
        version=info.version,
        schema=info.schema,
        status=info.status,
        created_at=info.created_at,
        metadata=info.metadata,
        save_id="",
        world_size=1,
        tree=encoder.tree,
        leaves=tuple(encoder.leaves),
        tensors=tensors,
        shards=(),
        history=info.history,
    )
    return Source(path, index, info, encoder.numbers)
