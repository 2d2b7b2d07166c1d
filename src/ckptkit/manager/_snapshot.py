"""Host-memory copies of a state for asynchronous saves, in one reused buffer.

An asynchronous save copies what the caller may change once ``save`` returns,
and writes the copy later. :meth:`HostSnapshotBuffer.freeze` copies the state's
containers and its tensors' bytes (``_freeze``) and leaves the encoding to the
background thread; :meth:`HostSnapshotBuffer.snapshot` copies the entries of a
state already encoded (the path for states ``_freeze`` leaves to the codec).
Either way the copies keep every sharing decision of the codec (tied weights,
views of one storage), so they encode to the same file, byte for byte.

The copies live in one ``uint8`` buffer that is kept and reused by the next save:
a warm buffer is a plain memcpy. A fresh one is mapped with its pages faulted in
at once (``fs.map_anonymous``), which costs far less than faulting them one by
one during the copy, and when the size of the next save is known in advance
(after ``restore``) it is made ready on a thread while the loop runs
(:meth:`HostSnapshotBuffer.prepare_for`). It is pinned when the state lives on a GPU,
so device-to-host copies run at full speed and without staging.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ckptkit._file import fs
from ckptkit._file.codec import Encoded, Entry, encode_state
from ckptkit.manager._freeze import (
    NotFrozenError,
    fill_arrays,
    freeze_tree,
    place,
    place_empty,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ckptkit.info import CheckpointInfo

# Every copy starts on a 64-byte boundary: any dtype view of it is aligned, and
# no two copies share a cache line.
_ALIGNMENT = 64
# Room for alignment when a buffer is made ready from a checkpoint's size.
_PREPARE_SLACK_BYTES = 1 << 20


def _offsets(sizes: list[int]) -> tuple[list[int], int]:
    offsets: list[int] = []
    total = 0
    for size in sizes:
        offsets.append(total)
        total += -(-size // _ALIGNMENT) * _ALIGNMENT
    return offsets, total


def _copy(host: torch.Tensor, window: torch.Tensor, source: torch.Tensor) -> None:
    if source.device.type == "cpu" and source.is_contiguous():
        # A plain memcpy: measured 1.4-2x faster than torch's threaded copy_
        # on a busy two-core host (bench/bench_manager.py).
        flat = source.reshape(-1).view(torch.uint8)
        np.copyto(window.numpy(), flat.numpy())
    else:
        # non_blocking only from a GPU into pinned memory; synchronised by the
        # caller before the snapshot is used.
        host.copy_(source, non_blocking=source.is_cuda)


def _allocate(nbytes: int, *, pinned: bool) -> torch.Tensor:
    if pinned:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    try:
        memory = fs.map_anonymous(max(nbytes, 1))
    except (OSError, ValueError):  # no such mapping here: torch's allocator
        return torch.empty(nbytes, dtype=torch.uint8)
    # The tensor keeps the array, the array keeps the mapping: freed together.
    return torch.from_numpy(np.frombuffer(memory, dtype=np.uint8))[:nbytes]


class HostSnapshotBuffer:
    """One reusable host buffer holding copies of a state's tensors."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None
        self._lock = threading.Lock()
        self._preparing: threading.Thread | None = None

    @property
    def capacity_bytes(self) -> int:
        """Size of the buffer kept for the next snapshot (0 when none)."""
        self._wait_prepared()
        return 0 if self._buffer is None else self._buffer.numel()

    @property
    def is_pinned(self) -> bool:
        """Whether the kept buffer is page-locked (for copies from a GPU)."""
        self._wait_prepared()
        return self._buffer is not None and self._buffer.is_pinned()

    def prepare_for(self, info: CheckpointInfo, map_location: Any) -> None:
        """After a restore the next save's size is known: ready a buffer on a thread."""
        self._wait_prepared()
        if self._buffer is not None:
            return
        nbytes = info.nbytes + 64 * info.tensor_count + _PREPARE_SLACK_BYTES
        # None, a str or a torch.device (checked): "cuda..." names a GPU either way.
        pinned = str(map_location).startswith("cuda")

        def allocate() -> None:
            try:
                buffer = _allocate(nbytes, pinned=pinned)
            except (OSError, RuntimeError):  # no memory now: the save allocates
                return
            with self._lock:
                if self._buffer is None:
                    self._buffer = buffer

        # A daemon: at exit nobody needs the buffer, and nothing is written.
        self._preparing = threading.Thread(
            target=allocate, name="ckptkit-buffer", daemon=True
        )
        self._preparing.start()

    def _wait_prepared(self) -> None:
        preparing, self._preparing = self._preparing, None
        if preparing is not None:
            preparing.join()

    def _reserve(self, nbytes: int, *, pinned: bool) -> torch.Tensor:
        self._wait_prepared()
        buffer = self._buffer
        if (
            buffer is None
            or buffer.numel() < nbytes
            or (pinned and not buffer.is_pinned())
        ):
            self._buffer = None  # free the old buffer before taking a new one
            buffer = _allocate(nbytes, pinned=pinned)
            self._buffer = buffer
        return buffer

    def copy_for_background(self, state: object) -> Callable[[], Encoded]:
        """Copy what the caller may change; return what encodes the copy later.

        Raises:
            SerializationError: A leaf ckptkit cannot store (found at once).
        """
        try:
            frozen = self.freeze(state)
        except NotFrozenError:
            # A leaf only the codec may judge: encode at once (it raises for an
            # unstorable one here), then copy the encoded entries.
            snapshot = self.snapshot(encode_state(state))
            return lambda: snapshot
        return lambda: encode_state(frozen)

    def freeze(self, state: object) -> object:
        """Copy ``state``'s containers and tensor bytes; return the copy.

        The copy is valid until the next ``freeze``, ``snapshot`` or ``release``.

        Raises:
            NotFrozenError: A leaf only the codec may judge (use ``snapshot``).
        """
        frozen = freeze_tree(state)
        groups = frozen.groups
        offsets, total = _offsets([group.nbytes for group in groups])
        on_gpu = {g.storage.device for g in groups if g.storage.device.type == "cuda"}
        buffer = self._reserve(total, pinned=bool(on_gpu))
        host = buffer.numpy()
        for group, offset in zip(groups, offsets, strict=True):
            window = buffer[offset : offset + group.nbytes]
            source = torch.empty(0, dtype=torch.uint8, device=group.storage.device)
            source.set_(group.storage, group.low, (group.nbytes,), (1,))
            _copy(window, window, source)
            # A storage of its own over the window: the codec tells storages
            # apart by address, so each group must stay a storage apart.
            place(
                group,
                torch.frombuffer(
                    host[offset : offset + group.nbytes], dtype=torch.uint8
                ),
            )
        for device in on_gpu:
            torch.cuda.current_stream(device).synchronize()
        place_empty(frozen)
        return fill_arrays(frozen.tree) if frozen.has_arrays else frozen.tree

    def snapshot(self, encoded: Encoded) -> Encoded:
        """Copy ``encoded``'s entries into the buffer; return the encoding of the copy.

        Returns once every copy is complete, GPU ones included. The result is only
        valid until the next ``snapshot`` or ``release``.
        """
        on_gpu = {e.tensor.device for e in encoded.entries if e.tensor.is_cuda}
        offsets, total = _offsets([entry.nbytes for entry in encoded.entries])
        buffer = self._reserve(total, pinned=bool(on_gpu))
        copies: list[Entry] = []
        for entry, offset in zip(encoded.entries, offsets, strict=True):
            source = entry.tensor
            if entry.nbytes == 0:
                host = torch.empty(source.shape, dtype=source.dtype)
            else:
                window = buffer[offset : offset + entry.nbytes]
                host = window.view(source.dtype).view(source.shape)
                _copy(host, window, source)
            copies.append(Entry(entry.name, host, entry.dtype, list(entry.shape)))
        for device in on_gpu:
            torch.cuda.current_stream(device).synchronize()
        return Encoded(tree=encoded.tree, leaves=encoded.leaves, entries=copies)

    def release(self) -> None:
        """Free the buffer (the next snapshot allocates a new one)."""
        self._wait_prepared()
        self._buffer = None
