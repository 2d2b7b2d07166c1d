"""Content identity of model files: what a result was computed with.

A file's identity is the xxh3-128 hash of its bytes, streamed (a 5.7 GB ESM-2 3B
file hashes in about a second). A model folder's identity hashes, in a fixed
order, the name and bytes of each file that decides its output (config, weights,
tokenizer), so renaming or copying a folder keeps its identity and changing any
weight changes it. Checkpoint metadata and the predict manifest record it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

#: Prefix naming the hash function in every identity string.
HASH_NAME = "xxh3_128"

_CHUNK_BYTES = 8 << 20


def _update_from_file(digest: xxhash.xxh3_128, path: Path) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)


def file_identity(path: str | os.PathLike[str]) -> str:
    """Hash one file's bytes.

    Returns:
        ``"xxh3_128:<32 hex digits>"``.

    Raises:
        FileNotFoundError: The file does not exist.
    """
    digest = xxhash.xxh3_128()
    _update_from_file(digest, Path(path))
    return f"{HASH_NAME}:{digest.hexdigest()}"


def files_identity(root: str | os.PathLike[str], names: Iterable[str]) -> str:
    """Hash several files of a folder: each file's name, size and bytes, in order.

    Returns:
        ``"xxh3_128:<32 hex digits>"``.

    Raises:
        FileNotFoundError: A named file does not exist.
    """
    digest = xxhash.xxh3_128()
    for name in names:
        path = Path(root) / name
        # Name and size as a header keep "a"+"bc" apart from "ab"+"c".
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        _update_from_file(digest, path)
    return f"{HASH_NAME}:{digest.hexdigest()}"


def content_identity(*parts: bytes) -> str:
    """Hash byte strings in order, each framed by its length.

    What a stage checkpoint records about its own content and about the
    checkpoints it was computed from, so that a resumed run reuses a result
    only while everything it depends on is unchanged.

    Returns:
        ``"xxh3_128:<32 hex digits>"``.

    Example:
        >>> content_identity(b"ab", b"c") == content_identity(b"a", b"bc")
        False
    """
    digest = xxhash.xxh3_128()
    for part in parts:
        # The length header keeps "ab"+"c" apart from "a"+"bc".
        digest.update(f"{len(part)}\0".encode())
        digest.update(part)
    return f"{HASH_NAME}:{digest.hexdigest()}"
