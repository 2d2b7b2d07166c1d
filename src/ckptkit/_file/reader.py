"""Reading whole checkpoints, ckptkit files and legacy 0.x files alike.

The engine of ``ckptkit.load`` and ``ckptkit.inspect``, without migrations.
"""

from __future__ import annotations

from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.format import (
    LEGACY_VERSION,
    SKELETON_ENTRY,
    utc_iso_from_timestamp,
)
from ckptkit._file.header import ParsedFile, open_checkpoint, parse_open
from ckptkit._file.skeleton import (
    LeafRef,
    checked_leaf,
    leaf_indices,
    materialize,
    unpack_skeleton,
)
from ckptkit._file.tensors import TensorSource, build_leaf
from ckptkit._file.torch_pickle import StorageDeclaration, declared_storages
from ckptkit._file.tree_v1 import decode_tree, leaf_kinds
from ckptkit._file.values import UnresolvedValueError
from ckptkit._file.versions import parse_version
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointIncompatibleError,
)
from ckptkit.info import Checkpoint, CheckpointInfo, TensorInfo
from ckptkit.keys import key_text, select_keys
from ckptkit.legacy import _load_legacy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from io import FileIO
    from pathlib import Path

    from ckptkit.legacy import SafeGlobal
    from ckptkit.types import StateTree

_CPU = torch.device("cpu")


def torch_pickle_info(
    parsed: ParsedFile,
    handle: FileIO,
    state: object | None = None,
    storages: Sequence[StorageDeclaration] | None = None,
) -> CheckpointInfo:
    """Header information of a legacy torch pickle, from its declared storages.

    ``tensors`` lists the storages the pickle declares (the buffers under its
    tensors, ``data/<key>``), read from its opcodes without running it.

    Args:
        parsed: The file, recognised as a torch pickle.
        handle: The file, open (read through it, never reopened).
        state: The unpickled state, when it was read (its own version/status).
        storages: The pickle's storage declarations, when already read.
    """
    if storages is None:
        storages = declared_storages(handle, parsed.path)
    tensors = tuple(
        TensorInfo(f"data/{item.key}", item.dtype, (item.numel,), item.nbytes)
        for item in storages
    )
    version, status = LEGACY_VERSION, "complete"
    if isinstance(state, dict):
        # Files of the system we replace carry "version"/"status" keys in the dict.
        stored_version = state.get("version")
        if isinstance(stored_version, str):
            with suppress(ValueError):  # not a version: it stays the legacy one
                version = parse_version(stored_version).text
        if state.get("status") in ("in_progress", "complete"):
            status = state["status"]
    return replace(
        info_from_parsed(parsed),
        version=version,
        status=status,
        tensor_count=len(tensors),
        nbytes=sum(item.nbytes for item in tensors),
        tensors=tensors,
    )


def info_from_parsed(parsed: ParsedFile) -> CheckpointInfo:
    """Build the public header information of a parsed file."""
    legacy = parsed.is_legacy
    tensors = tuple(
        TensorInfo(e.name, e.dtype_name, e.shape, e.end - e.begin)
        for e in sorted(parsed.entries.values(), key=lambda e: e.begin)
        if legacy or e.name != SKELETON_ENTRY  # ckptkit's own, not the state's
    )
    header = parsed.header
    return CheckpointInfo(
        path=parsed.path,
        format_version=0 if legacy else header["format_version"],
        version=LEGACY_VERSION if legacy else header["version"],
        schema=None if legacy else header.get("schema"),
        status="complete" if legacy else header["status"],
        created_at=(
            utc_iso_from_timestamp(parsed.mtime_s)
            if legacy
            else str(header.get("created_at", ""))
        ),
        metadata=dict(parsed.raw_metadata) if legacy else header["metadata"],
        tensor_count=len(tensors),
        nbytes=sum(t.nbytes for t in tensors),
        legacy=legacy,
        history=() if legacy else header["history_records"],
        tensors=tensors,
        file_size=parsed.file_size,
        legacy_kind=parsed.kind if legacy else None,
    )


def inspect_file(path: Path) -> CheckpointInfo:
    """Header information of a checkpoint (``ckptkit.inspect``); no tensor bytes."""
    with open_checkpoint(path) as handle:
        parsed = parse_open(path, handle)
        if parsed.kind == "torch":
            return torch_pickle_info(parsed, handle)
    return info_from_parsed(parsed)


@dataclass(frozen=True)
class ReadRequest:
    """What the caller asked ``load`` for (its arguments, checked)."""

    verify: bool
    use_mmap: bool
    keys: Sequence[tuple[Any, ...]] | None  # key paths, as parts
    device: torch.device = _CPU
    dtype: torch.dtype | None = None
    extra_safe_globals: Sequence[SafeGlobal] = ()


_MALFORMED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RuntimeError,
    RecursionError,
)


@contextmanager
def _rebuilding(path: Path) -> Iterator[None]:
    """Report a skeleton that cannot be rebuilt: damaged, or needing more here."""
    try:
        yield
    except CheckpointError:
        raise
    except UnresolvedValueError as error:
        raise CheckpointIncompatibleError(path, str(error)) from error
    except _MALFORMED as error:
        reason = f"state cannot be rebuilt: {type(error).__name__}: {error}"
        raise CheckpointCorruptError(path, reason.splitlines()[0]) from error


def read_structure(parsed: ParsedFile, handle: FileIO) -> object:
    """The state's structure, tensors not read (``skeleton.LeafRef`` in their place).

    Raises:
        CheckpointCorruptError: The skeleton is damaged.
        CheckpointIncompatibleError: It holds a kind of value this ckptkit
            does not know.
    """
    skeleton = None
    if parsed.header["format_version"] >= 2:  # noqa: PLR2004
        source = TensorSource(parsed, handle, verify=True, use_mmap=False)
        skeleton = source.skeleton(SKELETON_ENTRY)
    return _rebuild(parsed, skeleton, None)


def _rebuild(
    parsed: ParsedFile,
    skeleton: memoryview | None,
    leaf: Callable[[int], object] | None,
) -> object:
    """The state from its skeleton, or format 1's tree (``LeafRef``s if no ``leaf``)."""
    count = len(parsed.header["leaves"])
    with _rebuilding(parsed.path):
        if skeleton is not None:
            return unpack_skeleton(skeleton, leaf, count)
        value = LeafRef if leaf is None else leaf
        return decode_tree(
            parsed.header["tree"], lambda _kind, i: value(checked_leaf(i, count))
        )


def _leaf_table(parsed: ParsedFile) -> list[Any]:
    leaves: list[Any] = parsed.header["leaves"]
    if parsed.header["format_version"] < 2:  # noqa: PLR2004
        with _rebuilding(parsed.path):
            return leaf_kinds(parsed.header["tree"], leaves)
    return leaves


def _verify_unselected(
    source: TensorSource, parsed: ParsedFile, needed: set[int]
) -> None:
    """Full verification covers the whole file, not only the selected keys."""
    leaves = parsed.header["leaves"]
    wanted = {leaves[i]["entry"] for i in needed} | {SKELETON_ENTRY}
    for name in parsed.entries.keys() - wanted:
        source.verify_only(name)


def _decode_ckptkit(
    parsed: ParsedFile, handle: FileIO, request: ReadRequest
) -> StateTree:
    leaves = _leaf_table(parsed)
    source = TensorSource(
        parsed, handle, verify=request.verify, use_mmap=request.use_mmap
    )
    version = parsed.header["format_version"]
    # Read (and check) the skeleton first: a damaged one fails before any tensor.
    skeleton = source.skeleton(SKELETON_ENTRY) if version >= 2 else None  # noqa: PLR2004
    if request.keys is None:
        needed = set(range(len(leaves)))
    else:
        structure = _rebuild(parsed, skeleton, None)
        selected = select_keys(structure, request.keys, parsed.path)
        needed = set()
        with _rebuilding(parsed.path):
            leaf_indices(selected, needed)
        if request.verify:
            _verify_unselected(source, parsed, needed)
    # Every leaf is built (read, moved, cast) before the skeleton is decoded: an
    # error there (out of memory, a device gone) is raised as it is, never
    # mistaken for a damaged skeleton.
    built: dict[int, object] = {}
    for index in sorted(needed):
        built[index] = build_leaf(source, leaves[index], request.device, request.dtype)
    if request.keys is None:
        return _rebuild(parsed, skeleton, built.__getitem__)
    with _rebuilding(parsed.path):
        return materialize(selected, built.__getitem__)


def _load_legacy_pickle(
    parsed: ParsedFile,
    handle: FileIO,
    request: ReadRequest,
) -> Checkpoint:
    state, storages = _load_legacy(
        parsed.path,
        extra_globals=request.extra_safe_globals,
        map_location=str(request.device),
        handle=handle,
    )
    info = torch_pickle_info(parsed, handle, state, storages)
    if request.keys is not None:
        state = select_keys(state, request.keys, parsed.path)
    return Checkpoint(state=state, info=info)


def _load_plain_safetensors(
    parsed: ParsedFile, handle: FileIO, request: ReadRequest
) -> dict[str, torch.Tensor]:
    names = list(parsed.entries)
    if request.keys is not None:
        names = [key_text(parts) for parts in request.keys]
        missing = [n for n in names if n not in parsed.entries]
        if missing:
            msg = f"{parsed.path}: keys {missing} are not in the checkpoint"
            raise KeyError(msg)
    # Plain safetensors files carry no checksums: nothing more to verify.
    source = TensorSource(parsed, handle, verify=False, use_mmap=request.use_mmap)
    leaves = {name: {"kind": "tensor", "entry": name} for name in names}
    # A crafted header (shapes, offsets) is the file's fault: never a traceback.
    with _rebuilding(parsed.path):
        return {
            name: build_leaf(source, leaf, request.device, request.dtype)  # type: ignore[misc]
            for name, leaf in leaves.items()
        }


def read_checkpoint(path: Path, request: ReadRequest) -> Checkpoint:
    """Read a whole checkpoint (``ckptkit.load`` without a registry).

    The file is opened once and every byte is read through that one handle.
    """
    with open_checkpoint(path) as handle:
        parsed = parse_open(path, handle)
        if parsed.kind == "torch":
            return _load_legacy_pickle(parsed, handle, request)
        info = info_from_parsed(parsed)
        if parsed.kind == "safetensors":
            state = _load_plain_safetensors(parsed, handle, request)
        else:
            state = _decode_ckptkit(parsed, handle, request)
    return Checkpoint(state=state, info=info)
