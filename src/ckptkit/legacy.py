"""Read-only access to legacy ``torch.save`` pickles, never unsafely.

The only module allowed to call ``torch.load``: always with ``weights_only=True``
(torch's restricted unpickler) plus an explicit allowlist of extra globals that a
caller names. A pickle that needs anything else is refused before any of its code
runs; ckptkit never falls back to ``weights_only=False``.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ckptkit._file import fs
from ckptkit.errors import (
    CheckpointCorruptError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)

#: An allowlist entry: a class or function, or ``(object, "module.qualname")`` to
#: map the name found in the pickle onto an object of ours.
SafeGlobal = Callable[..., Any] | tuple[Callable[..., Any], str]

#: First bytes of the two container formats ``torch.save`` has used.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_BYTE = 0x80


def is_torch_pickle(head: bytes) -> bool:
    """Tell whether the first bytes of a file look like a ``torch.save`` file."""
    return head.startswith(ZIP_MAGIC) or (
        len(head) > 1 and head[0] == PICKLE_PROTOCOL_BYTE and 2 <= head[1] <= 5  # noqa: PLR2004
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
        CheckpointNotFoundError: The file does not exist.
        UnsafeCheckpointError: The pickle needs a global outside the allowlist.
        CheckpointCorruptError: The file is not a readable torch pickle.
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
            with torch.serialization.safe_globals(list(extra_globals)):
                if mmap:
                    return torch.load(
                        path, map_location=map_location, weights_only=True, mmap=True
                    )
                fs.seek(handle, 0)
                return torch.load(handle, map_location=map_location, weights_only=True)
    except FileNotFoundError as error:
        raise CheckpointNotFoundError(path, "file does not exist") from error
    except pickle.UnpicklingError as error:
        message = str(error)
        if "GLOBAL" in message:
            raise UnsafeCheckpointError(path, _unsafe_reason(message)) from error
        reason = f"unreadable torch pickle: {error}"
        raise CheckpointCorruptError(path, reason) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise CheckpointCorruptError(
            path, f"unreadable torch pickle: {str(error).splitlines()[0]}"
        ) from error
