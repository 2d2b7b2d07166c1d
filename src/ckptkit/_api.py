"""The public verbs on checkpoint files: save, load, inspect, cleanup.

Each is a thin, documented layer over the file engine in ``ckptkit._file``;
``load`` also migrates in memory through ``ckptkit.migrations`` when given a
registry. ``load``, ``inspect`` and ``cleanup`` also take sharded checkpoint
folders, handed to ``ckptkit.distributed`` (imported only then: it imports
torch.distributed). These verbs sit above all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ckptkit._file.atomic import remove_stale_temp_files
from ckptkit._file.format import CHECKPOINT_VERSION
from ckptkit._file.placement import check_dtype, check_map_location
from ckptkit._file.reader import ReadRequest, inspect_file, read_checkpoint
from ckptkit._file.sharded import may_be_sharded
from ckptkit._file.writer import HeaderFields, write_checkpoint
from ckptkit.keys import key_paths
from ckptkit.migrations._checkpoints import migrate_loaded, refuse_incompatible

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

    from ckptkit.info import Checkpoint, CheckpointInfo, MigrationRecord
    from ckptkit.keys import KeyPath
    from ckptkit.legacy import SafeGlobal
    from ckptkit.migrations import MigrationRegistry
    from ckptkit.types import PathLike, StateTree

Verify = Literal["none", "quick", "full"]


def save(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    state: StateTree,
    *,
    version: str = CHECKPOINT_VERSION,
    schema: str | None = None,
    status: str = "complete",
    metadata: dict[str, Any] | None = None,
    history: Sequence[MigrationRecord] = (),
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
        history: Migration steps already applied to this state, oldest first,
            stored as the header's ``history`` (``CheckpointInfo.history``): for
            a state converted by your own code from an older file, e.g. the
            records of ``MigrationRegistry.migrate``.

    Returns:
        Information about the written checkpoint.

    Raises:
        SerializationError: A leaf of unsupported type (the message names its path).
        ValueError: An invalid status or version, or a ``path`` named like one of
            ckptkit's temporary files.
        OSError: The disk refused a write (full, over quota, an I/O error): the
            file previously at ``path`` is untouched and the temporary file is
            removed (should that fail too, ``cleanup`` removes it).
            ``FileNotFoundError`` names a folder that does not exist (``save``
            creates none); ``IsADirectoryError`` a ``path`` that is a folder.

    Example:
        >>> import torch, ckptkit, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "step-10.ckpt"
        >>> info = ckptkit.save(target, {"step": 10, "w": torch.zeros(3)})
        >>> info.version, info.status
        ('1.0', 'complete')
    """
    fields = HeaderFields(version, schema, status, metadata, history)
    return write_checkpoint(path, state, fields)


def load(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    *,
    map_location: Any = "cpu",
    verify: Verify = "quick",
    mmap: bool = False,
    keys: Sequence[KeyPath] | None = None,
    extra_safe_globals: Sequence[SafeGlobal] = (),
    registry: MigrationRegistry | None = None,
    to_version: str | None = None,
    dtype: torch.dtype | None = None,
) -> Checkpoint:
    """Load a checkpoint written by ``save`` (or a legacy 0.x file, read-only).

    The file is opened once and every byte is read through that one handle, so a
    writer replacing ``path`` meanwhile can never make ``load`` mix two files.

    Args:
        path: The checkpoint file, or a sharded checkpoint folder
            (``ckptkit.distributed``), read whole into this process.
        map_location: Device for the tensors (``"cpu"``, ``"cuda:0"``, a
            ``torch.device``). Tensors that share memory in the file share it on
            that device too. Never casts; a dtype, a dict or a function here is
            a ``TypeError``. numpy values and generator states stay on the host.
        verify: ``"none"`` trusts the file; ``"quick"`` checks the header and the
            layout; ``"full"`` also checks every tensor's checksum before returning.
        mmap: Map tensor bytes from the file instead of reading them (CPU only;
            a private copy-on-write mapping that lives as long as the tensors).
        keys: Key paths of the parts of the state to load (``"model"``,
            ``"optim.state.0"``, or parts for names with dots:
            ``("model", "_orig_mod.w")``; see ``ckptkit.keys``); only their
            tensors are read. None loads everything.
        extra_safe_globals: For legacy pickles: globals allowed beyond torch's own
            weights-only set (see ``ckptkit.legacy``).
        registry: Migrate the state in memory after reading it, with this
            registry's chain (the file is not touched); ``Checkpoint.applied``
            lists the steps run. Not combinable with ``keys``.
        to_version: Target of that migration; defaults to ``registry.current``.
        dtype: Cast every floating-point tensor to this floating-point dtype
            (``torch.float16``); other tensors keep theirs. None keeps every
            dtype as saved. A cast makes copies: views of one storage no longer
            share memory (the same tensor twice still comes back once).

    Returns:
        The state and the file's header information.

    Raises:
        CheckpointNotFoundError: Missing file.
        CheckpointCorruptError: Damaged file (with ``verify="full"``: any damage).
        CheckpointIncompatibleError: A newer format, or a legacy pickle that needs
            a global outside the allowlist (never unpickled).
        KeyError: A requested key is not in the state.
        TypeError: ``map_location``, ``dtype`` or ``keys`` of the wrong kind (a
            caller's mistake: raised before the file is read).
        ValueError: An unknown ``verify``, a device this machine cannot use, a
            dtype that is not floating point.
        RuntimeError: Moving tensors to ``map_location`` failed (out of memory):
            raised as torch raised it, never as damage to the file.
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
    request = ReadRequest(
        verify=verify == "full",
        use_mmap=mmap,
        keys=None if keys is None else key_paths(keys, argument="keys"),
        device=check_map_location(map_location),
        dtype=check_dtype(dtype),
        extra_safe_globals=extra_safe_globals,
    )
    if registry is not None:
        return _load_migrated(Path(path), registry, to_version, request)
    return _read(Path(path), request)


def _read(path: Path, request: ReadRequest) -> Checkpoint:
    if may_be_sharded(path):
        from ckptkit.distributed._hooks import load_folder

        sharded = load_folder(path, request)
        if sharded is not None:
            return sharded
    return read_checkpoint(path, request)


def _inspect(path: Path) -> CheckpointInfo:
    if may_be_sharded(path):
        from ckptkit.distributed._hooks import inspect_folder

        sharded = inspect_folder(path)
        if sharded is not None:
            return sharded
    return inspect_file(path)


def _load_migrated(
    path: Path,
    registry: MigrationRegistry,
    to_version: str | None,
    request: ReadRequest,
) -> Checkpoint:
    """load() with a registry: refuse early from the header, read, migrate."""
    if request.keys is not None:
        msg = (
            "keys= and registry= cannot be combined: a migration needs the whole state"
        )
        raise ValueError(msg)
    header = _inspect(path)
    if not header.legacy:  # a legacy dict's own version is known only once read
        refuse_incompatible(header, registry, to_version)
    return migrate_loaded(_read(path, request), registry, to_version)


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
    return _inspect(Path(path))


def cleanup(directory: PathLike) -> list[Path]:
    """Remove temporary files left in ``directory`` by killed writers.

    Also finishes sharded saves (``ckptkit.distributed``) interrupted by a crash:
    a staging folder is removed, or, when the checkpoint it was replacing is
    gone, renamed into its place (the old checkpoint, moved aside, likewise).
    A temporary file or folder whose writer process is still alive is left alone.

    Args:
        directory: The folder holding checkpoints.

    Returns:
        The files and folders removed, and the folders renamed back into place
        (under their temporary names).

    Example:
        >>> import ckptkit, tempfile
        >>> ckptkit.cleanup(tempfile.mkdtemp())
        []
    """
    from ckptkit.distributed._commit import recover  # torch-free

    folder = Path(directory)
    removed = remove_stale_temp_files(folder)
    removed += [action.path for action in recover(folder) if action.action != "kept"]
    return removed
