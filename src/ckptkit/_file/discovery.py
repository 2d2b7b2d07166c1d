"""Find checkpoints in folders by their content, whatever the files are called.

A file is classified from its first bytes (docs/ckptkit/cli.md, "What counts as a
checkpoint"): ckptkit files, plain safetensors files and ``torch.save`` files are
checkpoints; temporary files of writers are counted apart; anything else is "not a
checkpoint". A ckptkit file with damaged first bytes is still recognised by the
``"ckptkit.`` keys near its start, so that it is reported as corrupted rather than
passed over.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ckptkit._file import fs
from ckptkit._file.format import (
    KEY_PREFIX,
    LEDGER_FILENAME,
    LENGTH_PREFIX_BYTES,
    MAX_HEADER_BYTES,
    parse_temp_name,
)
from ckptkit._file.sharded import is_sharded_checkpoint, is_work_name
from ckptkit._file.special_files import NotRegularFileError
from ckptkit.legacy import ZIP_MAGIC

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ckptkit.types import PathLike

#: Bytes read to classify a file: a ckptkit header starts with its own keys.
SNIFF_BYTES = 4096
#: Names under which an *empty* file (no content to go by) still counts as a
#: checkpoint, so that a checkpoint truncated to nothing is reported, not skipped.
CHECKPOINT_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".safetensors", ".bin"})
# The magic number torch.save's legacy (non-zip) format pickles first.
_TORCH_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_PICKLE_PROTO = 0x80
_CKPTKIT_KEY = f'"{KEY_PREFIX}'.encode()
_DIGIT_RUNS = re.compile(r"(\d+)")


class FileKind(StrEnum):
    """What a file found in a folder is."""

    CKPTKIT = "ckptkit"
    SAFETENSORS = "safetensors"
    TORCH = "torch"
    EMPTY = "empty"
    TEMPORARY = "temporary"
    OTHER = "not a checkpoint"

    @property
    def is_checkpoint(self) -> bool:
        """True for the kinds that are validated."""
        return self not in (FileKind.TEMPORARY, FileKind.OTHER)


def looks_like_safetensors(head: bytes) -> bool:
    """Whether a file's first bytes are a safetensors length prefix and ``{``."""
    if len(head) <= LENGTH_PREFIX_BYTES:
        return False
    (header_len,) = struct.unpack("<Q", head[:LENGTH_PREFIX_BYTES])
    # No check against the file size: a truncated safetensors file must still be
    # recognised as one (and reported truncated), not taken for a pickle.
    return 0 < header_len <= MAX_HEADER_BYTES and head[LENGTH_PREFIX_BYTES] == ord("{")


def classify_head(head: bytes) -> FileKind:
    """Classify a file's content from its first bytes (not empty)."""
    if looks_like_safetensors(head):
        return FileKind.CKPTKIT if _CKPTKIT_KEY in head else FileKind.SAFETENSORS
    if head.startswith(ZIP_MAGIC):
        # torch.save writes "<archive>/data.pkl" as the zip's first member, so its
        # name is in the first local header even when the file's end is lost.
        return FileKind.TORCH if b"/data.pkl" in head else FileKind.OTHER
    if head[0] == _PICKLE_PROTO and _TORCH_LEGACY_MAGIC in head[:32]:
        return FileKind.TORCH
    # A damaged length prefix or brace: a binary prefix (a NUL byte, which no text
    # file has) followed by ckptkit's keys is still a ckptkit file.
    if b"\x00" in head[:LENGTH_PREFIX_BYTES] and _CKPTKIT_KEY in head:
        return FileKind.CKPTKIT
    return FileKind.OTHER


_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v")
_CHECKPOINT_HINT = "pass a checkpoint file (.ckpt, .pt, .pth, .safetensors)"


def _first_line(text: str) -> str:
    line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return line if len(line) <= 60 else line[:57] + "..."  # noqa: PLR2004


def describe_foreign(head: bytes) -> str:
    """Say in one line what a file that is no checkpoint holds, and what to do.

    From its first bytes (a few hundred are plenty): ``"is a FASTA file (first
    line '>seq1'), not a checkpoint; pass ..."``, the same for a text file, or
    the first bytes of anything else.
    """
    text = head.decode("utf-8", errors="ignore")
    is_text = not any(b < 0x20 and b not in _TEXT_CONTROLS for b in head)  # noqa: PLR2004
    if is_text and text.strip():
        line = _first_line(text)
        what = "a FASTA file" if line.startswith((">", ";")) else "a text file"
        return f"is {what} (first line {line!r}), not a checkpoint; {_CHECKPOINT_HINT}"
    return (
        f"is not a checkpoint (it starts with bytes {head[:8].hex(' ')}); "
        f"{_CHECKPOINT_HINT}, or restore this one from a copy if it was one"
    )


def classify_file(path: PathLike) -> FileKind:
    """Classify one file by its content (reads at most :data:`SNIFF_BYTES`).

    Raises:
        OSError: The file cannot be read.
    """
    target = Path(path)
    if parse_temp_name(target.name) is not None:
        return FileKind.TEMPORARY
    try:
        handle = fs.open_read(target)
    except NotRegularFileError:
        return FileKind.OTHER  # a FIFO or device: never read, never waited on
    with handle:
        head = fs.read(handle, SNIFF_BYTES)
    if head:
        return classify_head(head)
    if target.suffix.lower() in CHECKPOINT_SUFFIXES:
        return FileKind.EMPTY
    return FileKind.OTHER


@dataclass
class Discovery:
    """Files found under the given paths, sorted into what is to be done."""

    checkpoints: list[Path] = field(default_factory=list)
    not_checkpoints: list[Path] = field(default_factory=list)
    temporary: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, path: Path, kind: FileKind) -> None:
        """File ``path`` under the list its kind belongs to."""
        if kind is FileKind.TEMPORARY:
            self.temporary.append(path)
        elif kind.is_checkpoint:
            self.checkpoints.append(path)
        else:
            self.not_checkpoints.append(path)


def _unreadable(path: Path, error: OSError) -> str:
    if fs.is_symlink(path) and not fs.exists(path):
        return f"{path}: broken link to {fs.readlink(path)}; fix or remove it"
    return f"{path}: cannot read file ({error.strerror}); check its permissions"


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    # "step-2" before "step-10": digit runs compare as numbers.
    return [
        (0, int(part)) if part.isdigit() else (1, part)
        for part in _DIGIT_RUNS.split(name)
        if part
    ]


def _walk_folder(folder: Path, found: Discovery) -> None:
    def on_error(error: OSError) -> None:
        found.errors.append(
            f"{error.filename}: cannot read folder ({error.strerror}); "
            "check its permissions"
        )

    for root, dirs, files in fs.walk(folder, on_error):
        dirs.sort(key=_natural_key)  # os.walk descends in this order
        dirs[:] = _sharded_folders(Path(root), dirs, found)
        for name in sorted(files, key=_natural_key):
            if name == LEDGER_FILENAME:
                continue  # ckptkit's own audit trail, not a candidate
            path = Path(root) / name
            try:
                kind = classify_file(path)
            except OSError as error:
                found.errors.append(_unreadable(path, error))
                continue
            found.add(path, kind)


def _sharded_folders(root: Path, dirs: list[str], found: Discovery) -> list[str]:
    """File sharded checkpoint folders and their staging folders; return the rest.

    A sharded checkpoint (``ckptkit.distributed``) is one checkpoint, however
    many shard files it holds; its staging and aside folders are temporary.
    """
    rest: list[str] = []
    for name in dirs:
        if is_work_name(name):
            found.temporary.append(root / name)
        elif is_sharded_checkpoint(root / name):
            found.checkpoints.append(root / name)
        else:
            rest.append(name)
    return rest


def discover(paths: Iterable[PathLike]) -> Discovery:
    """Sort the given files and every file under the given folders.

    A file named explicitly is always a checkpoint to check (a damaged one may
    look like nothing at all); files inside folders are classified by content.
    Folders are searched recursively without following links to folders.

    Args:
        paths: Files and folders.

    Returns:
        The checkpoints, other files, temporary files and unreadable places.
    """
    found = Discovery()
    for raw in paths:
        path = Path(raw)
        if fs.is_dir(path) and not is_sharded_checkpoint(path):
            _walk_folder(path, found)
        else:
            found.checkpoints.append(path)  # missing ones are reported by validate
    unique: dict[str, Path] = {}  # the first name given for each file
    for path in found.checkpoints:
        unique.setdefault(fs.realpath(path), path)
    found.checkpoints = list(unique.values())
    return found
