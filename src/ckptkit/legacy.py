"""Safe, read-only loading of legacy ``torch.save`` files (public).

The only module allowed to call ``torch.load``: always with ``weights_only=True``
(torch's restricted unpickler) plus an explicit allowlist of extra globals that a
caller names. A pickle that needs anything else is refused before any of its code
runs; ckptkit never falls back to ``weights_only=False``. ``ckptkit.load`` reads
legacy files through :func:`safe_torch_load`; use it directly for files that are
not checkpoints (model weights). docs/ckptkit/format.md, section 7, has the rules.

Example:
    >>> import collections, pathlib, tempfile, torch
    >>> from ckptkit.legacy import is_torch_pickle, safe_torch_load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "weights.pt"
    >>> torch.save(collections.OrderedDict(w=torch.ones(2)), path)
    >>> is_torch_pickle(path.read_bytes()[:8])
    True
    >>> safe_torch_load(path, extra_globals=[collections.OrderedDict])["w"]
    tensor([1., 1.])
"""

from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeAlias, cast

from ckptkit._file import fs
from ckptkit._file.bounded import BoundedReader
from ckptkit._file.format import view_limit_bytes
from ckptkit._file.special_files import NotRegularFileError
from ckptkit._file.torch_pickle import ZIP_MAGIC as _ZIP_MAGIC
from ckptkit._file.torch_pickle import StorageDeclaration, declared_storages
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)

#: An allowlist entry: a class or function, or ``(object, "module.qualname")`` to
#: map the name found in the pickle onto an object of ours.
SafeGlobal: TypeAlias = Callable[..., Any] | tuple[Callable[..., Any], str]

#: First bytes of a zip archive: the container ``torch.save`` writes since 1.6.
ZIP_MAGIC: Final = _ZIP_MAGIC
# Older torch.save files are a bare pickle: protocol opcode, then version 2..5.
_PICKLE_PROTOCOL_BYTE = 0x80
_PICKLE_VERSIONS = range(2, 6)


def is_torch_pickle(head: bytes) -> bool:
    """Tell whether the first bytes of a file look like a ``torch.save`` file.

    Args:
        head: The file's first bytes (two are enough).

    Returns:
        True for a zip archive or a bare pickle of protocol 2 to 5.
    """
    return head.startswith(ZIP_MAGIC) or (
        len(head) > 1
        and head[0] == _PICKLE_PROTOCOL_BYTE
        and head[1] in _PICKLE_VERSIONS
    )


def _unsafe_reason(message: str) -> str:
    first = next(
        (line.strip() for line in message.splitlines() if "GLOBAL" in line),
        message.strip().splitlines()[0] if message.strip() else "unknown global",
    )
    return (
        f"legacy pickle needs a global outside the safe allowlist ({first}); it was "
        "not unpickled. If you trust the file, convert it once in a trusted "
        "environment to a plain tensor dict (or a ckptkit checkpoint) and load that"
    )


def safe_torch_load(
    path: str | os.PathLike[str],
    *,
    extra_globals: Sequence[SafeGlobal] = (),
    map_location: str | None = "cpu",
    mmap: bool = False,
    handle: BinaryIO | None = None,
) -> Any:  # a pickle holds whatever its writer put there
    """Load a ``torch.save`` file with ``weights_only=True`` and an allowlist.

    Args:
        path: The legacy file.
        extra_globals: Globals allowed beyond torch's own weights-only set.
        map_location: Where tensors go.
        mmap: Memory-map tensor storage (zip files only; ignored with ``handle``).
        handle: An already open file of ``path`` to read instead of reopening it.

    Returns:
        The unpickled object.

    Raises:
        CheckpointNotFoundError: The file does not exist (or is a FIFO or device).
        UnsafeCheckpointError: The pickle needs a global outside the allowlist.
        CheckpointCorruptError: The file is not a readable torch pickle, declares
            storages larger than itself, or holds a tensor of (zero-stride)
            strides that describe far more bytes than the file.
    """
    state, _storages = _load_legacy(
        path,
        extra_globals=extra_globals,
        map_location=map_location,
        mmap=mmap,
        handle=handle,
    )
    return state


def _load_legacy(
    path: str | os.PathLike[str],
    *,
    extra_globals: Sequence[SafeGlobal] = (),
    map_location: str | None = "cpu",
    mmap: bool = False,
    handle: BinaryIO | None = None,
) -> tuple[Any, list[StorageDeclaration]]:
    """:func:`safe_torch_load`, also returning the storages the pickle declares.

    For ckptkit's readers, which report those (``CheckpointInfo.tensors``): the
    declarations are read once, to check them and to list them.
    """
    import pickle  # only for its exception type

    import torch

    path = os.fspath(path)
    try:
        with contextlib.ExitStack() as stack:
            if handle is None:
                # Opened through the I/O seam even when torch reopens the path to
                # map it: a missing or unreadable file fails here, in one place.
                handle = stack.enter_context(fs.open_read(Path(path)))
            elif mmap:
                mmap = False  # a given handle is read, not mapped
            # Declarations beyond the file's size are refused before torch
            # allocates them; every read torch makes is cut to the file's end.
            storages = declared_storages(handle, Path(path))
            reader = BoundedReader(handle)
            with (
                torch.serialization.safe_globals(list(extra_globals)),
                warnings.catch_warnings(),
            ):
                # torch notes pickle protocols other than its default; ckptkit
                # reads them all, and the note gives the user nothing to do.
                warnings.filterwarnings(
                    "ignore", "Detected pickle protocol", UserWarning
                )
                state = torch.load(
                    path if mmap else cast("BinaryIO", reader),
                    map_location=map_location,
                    weights_only=True,
                    mmap=True if mmap else None,  # None: torch's own default
                )
            _refuse_expanded(state, reader.size, path)
            return state, storages
    except CheckpointError:
        raise
    except NotRegularFileError as error:
        reason = f"{error.strerror}, not a checkpoint; it is never read"
        raise CheckpointNotFoundError(path, reason) from error
    except FileNotFoundError as error:
        raise CheckpointNotFoundError(path, "file does not exist") from error
    except pickle.UnpicklingError as error:
        message = str(error)
        if "GLOBAL" in message:
            raise UnsafeCheckpointError(path, _unsafe_reason(message)) from error
        reason = f"unreadable torch pickle: {error}"
        raise CheckpointCorruptError(path, reason) from error
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        # What torch's own code raises on what a crafted pickle gives it (a
        # negative size, a string for a stride, a storage key not declared:
        # torch checks some of those with assert).
        TypeError,
        AssertionError,
        KeyError,
        IndexError,
        AttributeError,
        ArithmeticError,
    ) as error:
        first = next(iter(str(error).splitlines()), "") or type(error).__name__
        raise CheckpointCorruptError(
            path, f"unreadable torch pickle: {first}"
        ) from error


def _oversized(state: object, limit: int) -> tuple[Any, str] | None:
    """The first tensor describing more than ``limit`` bytes and its path, or None.

    Iterative, and each container once (by identity): a pickle can nest deeper
    than Python recurses, and can share one list between two places at every
    level (a state of 2**100 paths from a few hundred bytes).
    """
    import torch

    seen: set[int] = set()
    pending: list[tuple[object, tuple[object, ...]]] = [(state, ())]
    while pending:
        node, keys = pending.pop()
        if isinstance(node, torch.Tensor):
            if node.numel() * node.element_size() > limit:
                return node, "state" + "".join(f"[{key!r}]" for key in keys)
        elif isinstance(node, (dict, list, tuple)) and id(node) not in seen:
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            pending.extend((value, (*keys, key)) for key, value in items)
    return None


def _refuse_expanded(state: object, file_size: int, path: str) -> None:
    """Refuse a tensor that describes far more bytes than the file holds.

    Only overlapping strides (zero strides, as ``expand`` makes) can do that; a
    crafted shape must not hand the caller a tensor that takes terabytes to
    copy. The limit is ``format.view_limit_bytes``, as for ckptkit files.

    Raises:
        CheckpointCorruptError: Such a tensor was found.
    """
    limit = view_limit_bytes(file_size)
    found = _oversized(state, limit)
    if found is not None:
        tensor, where = found
        nbytes = tensor.numel() * tensor.element_size()
        reason = (
            f"{where} is a tensor of {nbytes} bytes (zero or "
            f"overlapping strides) in a file of {file_size}; more than ckptkit "
            f"rebuilds (at most {limit} bytes): the file is damaged or crafted"
        )
        raise CheckpointCorruptError(path, reason)


__all__ = ["ZIP_MAGIC", "SafeGlobal", "is_torch_pickle", "safe_torch_load"]
