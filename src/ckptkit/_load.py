"""load() and inspect(): read checkpoints (ckptkit files and legacy 0.x files)."""

from __future__ import annotations

import mmap as mmap_module
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ckptkit._clock import utc_iso_from_timestamp
from ckptkit._codec import decode_tree
from ckptkit._digest import digest
from ckptkit._format import LEGACY_VERSION
from ckptkit._legacy import safe_torch_load
from ckptkit._reader import (
    EntrySpec,
    ParsedFile,
    check_digest,
    info_from_parsed,
    open_checkpoint,
    parse_file,
    parse_open,
    read_entry,
    verify_buffer,
    verify_entry,
)
from ckptkit._versions import parse_version
from ckptkit.errors import CheckpointCorruptError
from ckptkit.info import Checkpoint, CheckpointInfo
from ckptkit.keys import lookup, select_keys, split_key

if TYPE_CHECKING:
    from collections.abc import Sequence
    from io import FileIO

    from ckptkit._legacy import SafeGlobal
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import PathLike, StateTree

Verify = Literal["none", "quick", "full"]


def torch_pickle_info(
    path: Path, size: int, state: object | None = None
) -> CheckpointInfo:
    """Header information of a legacy torch pickle, from its zip directory."""
    count, nbytes = 0, 0
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for item in archive.infolist():
                if "/data/" in item.filename:
                    count, nbytes = count + 1, nbytes + item.file_size
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
        path=path,
        format_version=0,
        version=version,
        schema=None,
        status=status,
        created_at=utc_iso_from_timestamp(path.stat().st_mtime),
        metadata={},
        tensor_count=count,
        nbytes=nbytes,
        legacy=True,
        file_size=size,
        legacy_kind="torch",
    )


def inspect(path: PathLike) -> CheckpointInfo:
    """Read a checkpoint's header: version, schema, status, tensors. No tensor bytes.

    Args:
        path: The checkpoint file, or a sharded checkpoint folder
            (``ckptkit.distributed``: its global view, a ``ShardedCheckpointInfo``).

    Returns:
        What the file says about itself (``legacy=True`` for 0.x files).

    Raises:
        CheckpointNotFoundError: Missing or empty file.
        CheckpointCorruptError: A damaged header.
        CheckpointIncompatibleError: A container format newer than this ckptkit.

    Example:
        >>> import ckptkit, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(target, {"x": 1}, schema="demo")
        >>> ckptkit.inspect(target).schema
        'demo'
    """
    target = Path(path)
    if target.is_dir() or not target.exists():  # maybe a sharded checkpoint folder
        from ckptkit.distributed._hooks import inspect_folder

        sharded = inspect_folder(target)
        if sharded is not None:
            return sharded
    parsed = parse_file(target)
    if parsed.kind == "torch":
        return torch_pickle_info(parsed.path, parsed.file_size)
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


class _TensorSource:
    """Materialises stored tensors on demand, each read (and checked) once."""

    def __init__(
        self, parsed: ParsedFile, handle: FileIO, *, verify: bool, use_mmap: bool
    ) -> None:
        self._parsed = parsed
        self._verify = verify
        self._cache: dict[str, torch.Tensor] = {}
        self._handle = handle
        self._buffer: memoryview | None = None
        self._mmap: mmap_module.mmap | None = None
        if use_mmap and parsed.file_size > 0:
            self._mmap = mmap_module.mmap(
                self._handle.fileno(), 0, access=mmap_module.ACCESS_COPY
            )

    def verify_only(self, name: str) -> None:
        """Check one tensor's checksum without keeping its bytes."""
        if self._buffer is None:
            self._buffer = verify_buffer()
        spec = self._parsed.entries[name]
        verify_entry(self._handle, self._parsed, spec, self._buffer)

    def entry(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            spec = self._parsed.entries[name]
            self._cache[name] = self._read(spec)
        return self._cache[name]

    def _read(self, spec: EntrySpec) -> torch.Tensor:
        if self._mmap is None or spec.end == spec.begin:
            return read_entry(self._handle, self._parsed, spec, verify=self._verify)
        start = self._parsed.data_start + spec.begin
        if self._verify:
            window = memoryview(self._mmap)[start : self._parsed.data_start + spec.end]
            check_digest(self._parsed, spec, digest(window))
            window.release()
        flat = torch.frombuffer(
            self._mmap, dtype=torch.uint8, count=spec.end - spec.begin, offset=start
        )
        return flat.view(spec.dtype).reshape(spec.shape)


def _build_leaf(source: _TensorSource, leaf: dict[str, Any], kind: str) -> object:
    tensor = source.entry(leaf["entry"])
    view = leaf.get("view")
    if view is not None:
        dtype = getattr(torch, view["dtype"])
        # The blob entry is a fresh 1-D uint8 tensor at storage offset 0.
        tensor = torch.empty(0, dtype=dtype).set_(
            tensor.untyped_storage(), int(view["offset"]), view["shape"], view["stride"]
        )
    if leaf.get("complex128"):
        tensor = torch.view_as_complex(tensor)
    if kind == "ndarray":
        return tensor.numpy()
    if kind == "npscalar":
        return tensor.numpy()[()]
    return tensor


@dataclass(frozen=True)
class _Request:
    """What the caller asked ``load`` for."""

    verify: bool
    use_mmap: bool
    keys: Sequence[str] | None
    map_location: Any


def _place(tensor: torch.Tensor, map_location: Any) -> torch.Tensor:
    return tensor if map_location in (None, "cpu") else tensor.to(map_location)


def _verify_unselected(source: _TensorSource, parsed: ParsedFile, tree: Any) -> None:
    """Full verification covers the whole file, not only the selected keys."""
    needed: set[int] = set()
    _needed_leaves(tree, needed)
    wanted = {parsed.header["leaves"][i]["entry"] for i in needed}
    for name in parsed.entries.keys() - wanted:
        source.verify_only(name)


def _decode_ckptkit(parsed: ParsedFile, handle: FileIO, request: _Request) -> StateTree:
    tree = parsed.header["tree"]
    if request.keys is not None:
        tree = select_keys(tree, [split_key(k) for k in request.keys], parsed.path)
    leaves = parsed.header["leaves"]
    source = _TensorSource(
        parsed, handle, verify=request.verify, use_mmap=request.use_mmap
    )
    built: dict[int, object] = {}

    def leaf(kind: str, index: int) -> object:
        if index not in built:
            value = _build_leaf(source, leaves[index], kind)
            if isinstance(value, torch.Tensor):
                value = _place(value, request.map_location)
            built[index] = value
        return built[index]

    try:
        if request.verify and request.keys is not None:
            _verify_unselected(source, parsed, tree)
        return decode_tree(tree, leaf)
    except CheckpointCorruptError:
        raise
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as error:
        reason = f"state cannot be rebuilt: {error}"
        raise CheckpointCorruptError(parsed.path, reason) from error


def _load_legacy_pickle(
    parsed: ParsedFile,
    handle: FileIO,
    request: _Request,
    extra_safe_globals: Sequence[SafeGlobal],
) -> Checkpoint:
    state = safe_torch_load(
        parsed.path,
        extra_globals=extra_safe_globals,
        map_location=request.map_location,
        handle=handle,
    )
    info = torch_pickle_info(parsed.path, parsed.file_size, state)
    if request.keys is not None:
        state = {k: _get_legacy(state, k, parsed.path) for k in request.keys}
    return Checkpoint(state=state, info=info)


def _load_plain_safetensors(
    parsed: ParsedFile, handle: FileIO, request: _Request
) -> dict[str, torch.Tensor]:
    names = list(parsed.entries) if request.keys is None else list(request.keys)
    missing = [n for n in names if n not in parsed.entries]
    if missing:
        msg = f"{parsed.path}: keys {missing} are not in the checkpoint"
        raise KeyError(msg)
    # Plain safetensors files carry no checksums: nothing more to verify.
    source = _TensorSource(parsed, handle, verify=False, use_mmap=request.use_mmap)
    return {name: _place(source.entry(name), request.map_location) for name in names}


def _get_legacy(state: Any, key: str, path: Path) -> Any:
    try:
        return lookup(state, key)
    except KeyError:
        msg = f"{path}: key {key!r} is not in the checkpoint"
        raise KeyError(msg) from None


def load(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    *,
    map_location: Any = "cpu",
    verify: Verify = "quick",
    mmap: bool = False,
    keys: Sequence[str] | None = None,
    extra_safe_globals: Sequence[SafeGlobal] = (),
    registry: MigrationRegistry | None = None,
    to_version: str | None = None,
) -> Checkpoint:
    """Load a checkpoint written by ``save`` (or a legacy 0.x file, read-only).

    The file is opened once and every byte is read through that one handle, so a
    writer replacing ``path`` meanwhile can never make ``load`` mix two files.

    Args:
        path: The checkpoint file, or a sharded checkpoint folder
            (``ckptkit.distributed``), read whole into this process.
        map_location: Device for the tensors (``"cpu"``, ``"cuda:0"``, a
            ``torch.device``).
        verify: ``"none"`` trusts the file; ``"quick"`` checks the header and the
            layout; ``"full"`` also checks every tensor's checksum before returning.
        mmap: Map tensor bytes from the file instead of reading them (CPU only;
            a private copy-on-write mapping that lives as long as the tensors).
        keys: Dotted paths (``"model"``, ``"optim.state.0"``) of the parts of the
            state to load; only their tensors are read. None loads everything.
        extra_safe_globals: For legacy pickles: globals allowed beyond torch's own
            weights-only set (see ``ckptkit._legacy``).
        registry: Migrate the state in memory after reading it, with this
            registry's chain (the file is not touched); ``Checkpoint.applied``
            lists the steps run. Not combinable with ``keys``.
        to_version: Target of that migration; defaults to ``registry.current``.

    Returns:
        The state and the file's header information.

    Raises:
        CheckpointNotFoundError: Missing file.
        CheckpointCorruptError: Damaged file (with ``verify="full"``: any damage).
        CheckpointIncompatibleError: A newer format, or a legacy pickle that needs
            a global outside the allowlist (never unpickled).
        KeyError: A requested key is not in the state.
        MigrationError: With ``registry``: no chain, or a failing step (see
            ``MigrationRegistry.migrate``); a file of another schema or a newer
            version raises ``SchemaMismatchError`` / ``UnsupportedVersionError``.

    Example:
        >>> import torch, ckptkit, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(target, {"w": torch.ones(2), "step": 3})
        >>> ckptkit.load(target, verify="full").state["step"]
        3
    """
    if verify not in ("none", "quick", "full"):
        msg = f"verify must be 'none', 'quick' or 'full', not {verify!r}"
        raise ValueError(msg)
    if registry is not None:
        return _load_migrated(
            path,
            registry,
            to_version,
            map_location=map_location,
            verify=verify,
            mmap=mmap,
            keys=keys,
            extra_safe_globals=extra_safe_globals,
        )
    request = _Request(verify == "full", mmap, keys, map_location)
    file_path = Path(path)
    if file_path.is_dir() or not file_path.exists():  # maybe a sharded folder
        from ckptkit.distributed._hooks import load_folder

        sharded = load_folder(
            file_path, map_location=map_location, verify=verify, mmap=mmap, keys=keys
        )
        if sharded is not None:
            return sharded
    with open_checkpoint(file_path) as handle:
        parsed = parse_open(file_path, handle)
        if parsed.kind == "torch":
            return _load_legacy_pickle(parsed, handle, request, extra_safe_globals)
        info = info_from_parsed(parsed)
        if parsed.kind == "safetensors":
            state = _load_plain_safetensors(parsed, handle, request)
        else:
            state = _decode_ckptkit(parsed, handle, request)
    return Checkpoint(state=state, info=info)


def _load_migrated(  # noqa: PLR0913 - load()'s own parameters
    path: PathLike,
    registry: MigrationRegistry,
    to_version: str | None,
    *,
    map_location: Any,
    verify: Verify,
    mmap: bool,
    keys: Sequence[str] | None,
    extra_safe_globals: Sequence[SafeGlobal],
) -> Checkpoint:
    """load() with a registry: refuse early from the header, read, migrate."""
    # Imported here: migrations builds on this module.
    from ckptkit._migration_run import migrate_loaded, refuse_incompatible

    if keys is not None:
        msg = (
            "keys= and registry= cannot be combined: a migration needs the whole state"
        )
        raise ValueError(msg)
    header = inspect(path)
    if not header.legacy:  # a legacy dict's own version is known only once read
        refuse_incompatible(header, registry, to_version)
    checkpoint = load(
        path,
        map_location=map_location,
        verify=verify,
        mmap=mmap,
        extra_safe_globals=extra_safe_globals,
    )
    return migrate_loaded(checkpoint, registry, to_version)
