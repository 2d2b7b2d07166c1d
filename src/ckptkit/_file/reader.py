"""Reading whole checkpoints, ckptkit files and legacy 0.x files alike.

The engine of ``ckptkit.load`` and ``ckptkit.inspect``, without migrations.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file.codec import decode_tree
from ckptkit._file.format import LEGACY_VERSION, utc_iso_from_timestamp
from ckptkit._file.header import ParsedFile, open_checkpoint, parse_open
from ckptkit._file.tensors import TensorSource, build_leaf
from ckptkit._file.torch_pickle import StorageDeclaration, declared_storages
from ckptkit._file.versions import parse_version
from ckptkit.errors import CheckpointCorruptError
from ckptkit.info import Checkpoint, CheckpointInfo, TensorInfo
from ckptkit.keys import lookup, select_keys, split_key
from ckptkit.legacy import _load_legacy

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from io import FileIO
    from pathlib import Path

    from ckptkit.legacy import SafeGlobal
    from ckptkit.types import StateTree


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
            try:
                version = parse_version(stored_version).text
            except ValueError:
                version = LEGACY_VERSION
        if state.get("status") in ("in_progress", "complete"):
            status = state["status"]
    return CheckpointInfo(
        path=parsed.path,
        format_version=0,
        version=version,
        schema=None,
        status=status,
        created_at=utc_iso_from_timestamp(parsed.mtime_s),
        metadata={},
        tensor_count=len(tensors),
        nbytes=sum(item.nbytes for item in tensors),
        legacy=True,
        tensors=tensors,
        file_size=parsed.file_size,
        legacy_kind="torch",
    )


def info_from_parsed(parsed: ParsedFile) -> CheckpointInfo:
    """Build the public header information of a parsed file."""
    tensors = tuple(
        TensorInfo(e.name, e.dtype_name, e.shape, e.end - e.begin)
        for e in sorted(parsed.entries.values(), key=lambda e: e.begin)
    )
    legacy = parsed.is_legacy
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


def _needed_leaves(node: Any, out: set[int]) -> None:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if kind in ("tensor", "ndarray", "npscalar"):
            out.add(int(body))
        elif kind in ("list", "tuple"):
            for item in body:
                _needed_leaves(item, out)
        elif kind in ("dict", "odict"):
            for pair in body:
                _needed_leaves(pair[1], out)


# What rebuilding a state from a damaged (or crafted) skeleton can raise: a wrong
# type or value (OverflowError from a huge float, RecursionError from deep
# nesting) is the file's fault, never a reason for a traceback.
_REBUILD_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    RuntimeError,
    IndexError,
    ArithmeticError,
)


@contextlib.contextmanager
def rebuild_errors(path: Path) -> Iterator[None]:
    """Turn an error met while rebuilding a state into ``CheckpointCorruptError``."""
    try:
        yield
    except CheckpointCorruptError:
        raise
    except _REBUILD_ERRORS as error:
        detail = "nested too deeply" if isinstance(error, RecursionError) else error
        reason = f"state cannot be rebuilt: {detail}"
        raise CheckpointCorruptError(path, reason) from error


def leaf_of(leaves: list[Any], index: int) -> dict[str, Any]:
    """The leaf record ``index`` of the header (never counted from the end).

    Raises:
        ValueError: No such leaf.
    """
    if not 0 <= index < len(leaves):
        msg = f"the state refers to leaf {index}, but the file has {len(leaves)}"
        raise ValueError(msg)
    leaf: dict[str, Any] = leaves[index]
    return leaf


def check_tree(parsed: ParsedFile) -> None:
    """Check that the state's skeleton can be rebuilt (no tensor bytes are read).

    Raises:
        CheckpointCorruptError: It cannot.
    """
    leaves = parsed.header["leaves"]
    with rebuild_errors(parsed.path):
        decode_tree(parsed.header["tree"], lambda _kind, index: leaf_of(leaves, index))


@dataclass(frozen=True)
class ReadRequest:
    """What the caller asked ``load`` for (its arguments, checked)."""

    verify: bool
    use_mmap: bool
    keys: Sequence[str] | None
    map_location: Any
    extra_safe_globals: Sequence[SafeGlobal] = ()


def _place(tensor: torch.Tensor, map_location: Any) -> torch.Tensor:
    return tensor if map_location in (None, "cpu") else tensor.to(map_location)


def _verify_unselected(source: TensorSource, parsed: ParsedFile, tree: Any) -> None:
    """Full verification covers the whole file, not only the selected keys."""
    needed: set[int] = set()
    _needed_leaves(tree, needed)
    wanted = {parsed.header["leaves"][i]["entry"] for i in needed}
    for name in parsed.entries.keys() - wanted:
        source.verify_only(name)


def _decode_ckptkit(
    parsed: ParsedFile, handle: FileIO, request: ReadRequest
) -> StateTree:
    tree = parsed.header["tree"]
    if request.keys is not None:
        tree = select_keys(tree, [split_key(k) for k in request.keys], parsed.path)
    leaves = parsed.header["leaves"]
    source = TensorSource(
        parsed, handle, verify=request.verify, use_mmap=request.use_mmap
    )
    built: dict[int, object] = {}

    def leaf(kind: str, index: int) -> object:
        if index not in built:
            value = build_leaf(source, leaf_of(leaves, index), kind)
            if isinstance(value, torch.Tensor):
                value = _place(value, request.map_location)
            built[index] = value
        return built[index]

    with rebuild_errors(parsed.path):
        if request.verify and request.keys is not None:
            _verify_unselected(source, parsed, tree)
        return decode_tree(tree, leaf)


def _load_legacy_pickle(
    parsed: ParsedFile,
    handle: FileIO,
    request: ReadRequest,
) -> Checkpoint:
    state, storages = _load_legacy(
        parsed.path,
        extra_globals=request.extra_safe_globals,
        map_location=request.map_location,
        handle=handle,
    )
    info = torch_pickle_info(parsed, handle, state, storages)
    if request.keys is not None:
        state = {k: _get_legacy(state, k, parsed.path) for k in request.keys}
    return Checkpoint(state=state, info=info)


def _load_plain_safetensors(
    parsed: ParsedFile, handle: FileIO, request: ReadRequest
) -> dict[str, torch.Tensor]:
    names = list(parsed.entries) if request.keys is None else list(request.keys)
    missing = [n for n in names if n not in parsed.entries]
    if missing:
        msg = f"{parsed.path}: keys {missing} are not in the checkpoint"
        raise KeyError(msg)
    # Plain safetensors files carry no checksums: nothing more to verify.
    source = TensorSource(parsed, handle, verify=False, use_mmap=request.use_mmap)
    with rebuild_errors(parsed.path):
        return {
            name: _place(source.entry(name), request.map_location) for name in names
        }


def _get_legacy(state: Any, key: str, path: Path) -> Any:
    try:
        return lookup(state, key)
    except KeyError:
        msg = f"{path}: key {key!r} is not in the checkpoint"
        raise KeyError(msg) from None


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
