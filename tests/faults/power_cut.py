"""A model of what a power cut can leave on disk, fed by a recorded run.

The run's file operations are recorded beneath the seam as effects (create,
write at an offset, truncate, fsync, rename, link, unlink, directory fsync).
Replaying a prefix of them builds the disk as the kernel knew it at that moment;
:meth:`Disk.images` then lists every disk a power cut at that moment may leave,
under the guarantees ckptkit documents (docs/ckptkit/reliability.md):

- a file's data is durable once the file was fsynced; data written since may be
  lost, kept, or kept in part (any subset of the writes, and each write torn);
- a change to a folder's entries (create, rename, link, unlink) is durable once
  the folder was fsynced; until then each may or may not have happened
  (``rename(2)`` itself being atomic: the name shows the old file or the new one).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckptkit._file import fs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

Effect = tuple[Any, ...]
# Above this many pending writes on one file, subsets are replaced by prefixes
# and single drops (the count of images stays small).
_MAX_SUBSET_WRITES = 6


def _name(value: object) -> str:
    raw = getattr(value, "name", value)
    return Path(os.fspath(raw)).name  # type: ignore[arg-type]


def _recording(effects: list[Effect]) -> dict[str, Callable[..., Any]]:
    """Raw calls that do the real thing and log its effect on the folder."""
    real = dict(fs.SYSTEM_CALLS)

    def open_new(path: Path) -> Any:
        handle = real["open_new"](path)
        effects.append(("create", _name(path)))
        return handle

    def write(handle: Any, data: Any) -> Any:
        offset = handle.tell()
        count = real["write"](handle, data)
        written = bytes(memoryview(data).cast("B")[: count or 0])
        effects.append(("write", _name(handle), offset, written))
        return count

    def truncate(handle: Any, size: int) -> None:
        real["truncate"](handle, size)
        effects.append(("truncate", _name(handle), size))

    def fsync(handle: Any) -> None:
        real["fsync"](handle)
        effects.append(("fsync", _name(handle)))

    def replace(source: Path, target: Path) -> None:
        real["replace"](source, target)
        effects.append(("rename", _name(source), _name(target)))

    def link(source: Path, target: Path) -> None:
        real["link"](source, target)
        effects.append(("link", _name(source), _name(target)))

    def unlink(path: Path, *, missing_ok: bool = False) -> None:
        existed = path.exists()
        real["unlink"](path, missing_ok=missing_ok)
        if existed:
            effects.append(("unlink", _name(path)))

    def fsync_directory(directory: Path) -> None:
        real["fsync_directory"](directory)
        effects.append(("fsync_dir",))

    return {
        "open_new": open_new,
        "write": write,
        "truncate": truncate,
        "fsync": fsync,
        "replace": replace,
        "link": link,
        "unlink": unlink,
        "fsync_directory": fsync_directory,
    }


@contextlib.contextmanager
def recorded_effects() -> Iterator[list[Effect]]:
    """Record the effects of every file operation run in the block (one folder)."""
    effects: list[Effect] = []
    saved = dict(fs.SYSTEM_CALLS)
    fs.SYSTEM_CALLS.update(_recording(effects))
    try:
        yield effects
    finally:
        fs.SYSTEM_CALLS.clear()
        fs.SYSTEM_CALLS.update(saved)


@dataclass
class _Inode:
    durable: bytes
    pending: list[Effect] = field(default_factory=list)

    def contents(self) -> set[bytes]:
        """Every content a power cut may leave in this file."""
        writes = self.pending
        variants = {self.durable, _apply(self.durable, writes)}
        if len(writes) <= _MAX_SUBSET_WRITES:
            for size in range(1, len(writes)):
                for kept in itertools.combinations(writes, size):
                    variants.add(_apply(self.durable, kept))
        else:
            for index in range(len(writes)):
                variants.add(_apply(self.durable, writes[:index]))
                variants.add(_apply(self.durable, writes[:index] + writes[index + 1 :]))
        for index, effect in enumerate(writes):  # each write torn in half
            if effect[0] == "write":
                torn = (*effect[:3], effect[3][: len(effect[3]) // 2])
                variants.add(_apply(self.durable, [*writes[:index], torn]))
        return variants


def _apply(data: bytes, writes: Sequence[Effect]) -> bytes:
    content = bytearray(data)
    for effect in writes:
        if effect[0] == "write":
            _, _, offset, chunk = effect
            if len(content) < offset:
                content.extend(bytes(offset - len(content)))
            content[offset : offset + len(chunk)] = chunk
        else:  # truncate
            del content[effect[2] :]
    return bytes(content)


class Disk:
    """One folder as the kernel knows it, and what a power cut may leave of it."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._inodes = [_Inode(data) for data in files.values()]
        self._durable = {name: index for index, name in enumerate(files)}
        self._current = dict(self._durable)
        self._pending_dir: list[Effect] = []

    def apply(self, effect: Effect) -> None:
        """Replay one recorded effect."""
        kind = effect[0]
        if kind == "create":
            self._inodes.append(_Inode(b""))
            self._current[effect[1]] = len(self._inodes) - 1
            self._pending_dir.append(("create", effect[1], len(self._inodes) - 1))
        elif kind in ("write", "truncate"):
            self._inodes[self._current[effect[1]]].pending.append(effect)
        elif kind == "fsync":
            inode = self._inodes[self._current[effect[1]]]
            inode.durable, inode.pending = _apply(inode.durable, inode.pending), []
        elif kind in ("rename", "link"):
            self._current[effect[2]] = self._current[effect[1]]
            if kind == "rename":
                del self._current[effect[1]]
            self._pending_dir.append(effect)
        elif kind == "unlink":
            del self._current[effect[1]]
            self._pending_dir.append(effect)
        elif kind == "fsync_dir":
            self._durable, self._pending_dir = dict(self._current), []

    def _entries(self) -> Iterator[dict[str, int]]:
        """Every set of folder entries a power cut may leave."""
        pending = self._pending_dir
        for size in range(len(pending) + 1):
            for kept in itertools.combinations(pending, size):
                entries = dict(self._durable)
                for effect in kept:
                    _replay_entry(entries, effect)
                yield entries

    def images(self, names: Sequence[str]) -> set[tuple[bytes | None, ...]]:
        """The contents of ``names`` (None: absent) on every disk a cut may leave."""
        found: set[tuple[bytes | None, ...]] = set()
        for entries in self._entries():
            options = [
                sorted(self._inodes[entries[name]].contents())
                if name in entries
                else [None]
                for name in names
            ]
            found.update(itertools.product(*options))
        return found


def _replay_entry(entries: dict[str, int], effect: Effect) -> None:
    kind = effect[0]
    if kind == "create":
        entries[effect[1]] = effect[2]
    elif effect[1] in entries:  # a change to a name whose creation was lost: none
        if kind == "rename":
            entries[effect[2]] = entries.pop(effect[1])
        elif kind == "link":
            entries[effect[2]] = entries[effect[1]]
        else:  # unlink
            del entries[effect[1]]


def _all_names(files: dict[str, bytes], effects: Sequence[Effect]) -> list[str]:
    names = set(files)
    for effect in effects:
        if effect[0] in ("create", "rename", "link"):
            names.update(effect[1:] if effect[0] != "create" else effect[1:2])
    return sorted(names)


def images_at_every_moment(
    files: dict[str, bytes], effects: Sequence[Effect], names: Sequence[str]
) -> Iterator[tuple[int, int, set[tuple[bytes | None, ...]]]]:
    """For each prefix of ``effects`` (0 to all): its length, how many whole-folder
    disks a power cut may leave then, and what ``names`` hold on them."""
    everything = _all_names(files, effects)
    picks = [everything.index(name) for name in names]
    disk = Disk(files)
    for count in range(len(effects) + 1):
        if count:
            disk.apply(effects[count - 1])
        images = disk.images(everything)
        yield count, len(images), {tuple(i[k] for k in picks) for i in images}
