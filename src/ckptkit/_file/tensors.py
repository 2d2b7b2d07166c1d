"""Reading a checkpoint's tensor bytes, checked against their checksums.

Every read goes through the handle the caller opened (see ``header.open_checkpoint``),
in slices, into fresh memory or a private copy-on-write mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ckptkit._file import fs
from ckptkit._file.digest import StreamingDigest, digest
from ckptkit._file.leaf_views import leaf_value, shaped
from ckptkit.errors import (
    CheckpointCorruptError,
    ChecksumMismatchError,
    TruncatedCheckpointError,
)

if TYPE_CHECKING:
    from io import FileIO
    from pathlib import Path

    from ckptkit._file.entries import EntrySpec
    from ckptkit._file.header import ParsedFile

_READ_SLICE_BYTES = 64 << 20
_CPU = torch.device("cpu")
VERIFY_SLICE_BYTES = 16 << 20
_ALIGNMENT_BYTES = 16  # the largest itemsize (complex128)


def read_entry(
    handle: FileIO,
    parsed: ParsedFile,
    spec: EntrySpec,
    *,
    verify: bool,
) -> torch.Tensor:
    """Read one tensor's bytes into fresh memory, checking its checksum if asked.

    Raises:
        ChecksumMismatchError: ``verify`` and the bytes do not match.
        TruncatedCheckpointError: The file ended early.
    """
    tensor = torch.empty(spec.shape, dtype=spec.dtype)
    digest = StreamingDigest()
    if tensor.numel():
        view = tensor.reshape(-1).view(torch.uint8).numpy().data
        fs.seek(handle, parsed.data_start + spec.begin)
        position = 0
        while position < len(view):
            count = fs.read_into(handle, view[position : position + _READ_SLICE_BYTES])
            if not count:
                raise TruncatedCheckpointError(
                    parsed.path, f"file ends inside tensor {spec.name!r}"
                )
            if verify:
                digest.update(view[position : position + count])
            position += count
    if verify:
        check_digest(parsed, spec, digest.hexdigest())
    return tensor


def verify_entry(
    handle: FileIO, parsed: ParsedFile, spec: EntrySpec, buffer: memoryview
) -> None:
    """Check one tensor's checksum by streaming its bytes through ``buffer``.

    Raises:
        ChecksumMismatchError: The bytes do not match the header's checksum.
        TruncatedCheckpointError: The file ended early.
    """
    stream = StreamingDigest()
    fs.seek(handle, parsed.data_start + spec.begin)
    remaining = spec.end - spec.begin
    while remaining:
        count = fs.read_into(handle, buffer[: min(remaining, len(buffer))])
        if not count:
            reason = f"file ends inside tensor {spec.name!r}"
            raise TruncatedCheckpointError(parsed.path, reason)
        stream.update(buffer[:count])
        remaining -= count
    check_digest(parsed, spec, stream.hexdigest())


def verify_buffer() -> memoryview:
    """A reusable read buffer: fresh allocations per slice would cost page faults."""
    return memoryview(bytearray(VERIFY_SLICE_BYTES))


def verify_all(handle: FileIO, parsed: ParsedFile) -> None:
    """Check every tensor's checksum, in file order (one sequential read).

    Raises:
        ChecksumMismatchError: A tensor's bytes do not match (the first found).
        TruncatedCheckpointError: The file ended early.
    """
    buffer = verify_buffer()
    for spec in sorted(parsed.entries.values(), key=lambda e: e.begin):
        verify_entry(handle, parsed, spec, buffer)


def check_digest(parsed: ParsedFile, spec: EntrySpec, actual: str) -> None:
    """Compare a tensor's checksum with the header's (ckptkit files only)."""
    if not parsed.is_legacy and parsed.header["checksums"].get(spec.name) != actual:
        raise ChecksumMismatchError(
            parsed.path,
            f"checksum mismatch in tensor {spec.name!r}: the file is damaged; "
            "restore it from a copy or recompute it",
        )


class TensorSource:
    """Materialises a file's stored tensors on demand, each read (and checked) once.

    ``handle`` stays open (the caller closes it); ``use_mmap`` maps tensor bytes (a
    private copy-on-write mapping) instead of reading them.
    """

    def __init__(
        self, parsed: ParsedFile, handle: FileIO, *, verify: bool, use_mmap: bool
    ) -> None:
        self._parsed = parsed
        self._verify = verify
        self._cache: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._handle = handle
        self._buffer: memoryview | None = None
        self._mmap: fs.MappedFile | None = None
        if use_mmap and parsed.file_size > 0:
            self._mmap = fs.map_private(self._handle)

    def verify_only(self, name: str) -> None:
        """Check one tensor's checksum without keeping its bytes."""
        if self._buffer is None:
            self._buffer = verify_buffer()
        spec = self._parsed.entries[name]
        verify_entry(self._handle, self._parsed, spec, self._buffer)

    def skeleton(self, name: str) -> memoryview:
        """The bytes of the skeleton entry ``name``, always checked.

        A damaged skeleton must never decode into a wrong state, at any level.
        """
        spec = self._parsed.entries[name]
        tensor = read_entry(self._handle, self._parsed, spec, verify=True)
        return tensor.numpy().data

    def entry(
        self, name: str, device: torch.device = _CPU, *, aligned: bool = False
    ) -> torch.Tensor:
        """The stored tensor ``name`` on ``device``, read on first use.

        ``aligned``: its bytes must start at a multiple of 16 (every use of an
        entry asks the same: complex128 values and views of a shared blob).

        The whole entry moves at once, so views of it stay views of one storage
        on any device. Errors of the move (out of memory, a device gone) are
        raised as they are: they are not damage to the file.
        """
        key = (name, device)
        if key not in self._cache:
            tensor = self._read(self._parsed.entries[name], aligned=aligned)
            self._cache[key] = tensor if device == _CPU else tensor.to(device)
        return self._cache[key]

    def _read(self, spec: EntrySpec, *, aligned: bool) -> torch.Tensor:
        start = self._parsed.data_start + spec.begin
        # Mapped bytes are only as aligned as their file offset (the map starts on
        # a page): complex128 needs 16 bytes (its kernels segfault on 8), and a
        # blob's views may be any dtype. Such an entry is read into fresh memory.
        misaligned = aligned and start % _ALIGNMENT_BYTES != 0
        if self._mmap is None or spec.end == spec.begin or misaligned:
            return read_entry(self._handle, self._parsed, spec, verify=self._verify)
        if self._verify:
            window = memoryview(self._mmap)[start : self._parsed.data_start + spec.end]
            check_digest(self._parsed, spec, digest(window))
            window.release()
        flat = torch.frombuffer(
            self._mmap, dtype=torch.uint8, count=spec.end - spec.begin, offset=start
        )
        return flat.view(spec.dtype).reshape(spec.shape)

    @property
    def path(self) -> Path:
        return self._parsed.path


_HOST_KINDS = frozenset({"ndarray", "npscalar", "generator"})


def _generator(
    leaf: dict[str, Any], state: torch.Tensor, path: Path
) -> torch.Generator:
    generator = torch.Generator(device=leaf["device"])  # no such device: raised as is
    try:
        generator.set_state(state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointCorruptError(
            path, f"a generator state is malformed: {error}"
        ) from error
    return generator


def build_leaf(
    source: TensorSource,
    leaf: dict[str, Any],
    device: torch.device = _CPU,
    dtype: torch.dtype | None = None,
) -> object:
    """Rebuild one state leaf from its entry (tensor, view, numpy value, generator).

    Tensors go to ``device`` (numpy values and generator states stay on the host)
    and, with ``dtype``, floating-point tensors are cast to it.

    Raises:
        CheckpointCorruptError: The leaf's description does not fit its entry.
        Exception: Moving to ``device`` failed (out of memory, ...): as raised.
    """
    kind = leaf.get("kind")
    aligned = "view" in leaf or bool(leaf.get("complex128"))
    entry = source.entry(
        leaf["entry"], _CPU if kind in _HOST_KINDS else device, aligned=aligned
    )
    try:
        tensor = shaped(entry, leaf)
        if tensor is entry:  # each leaf its own tensor object, sharing the entry
            tensor = entry.view(entry.shape)
        if kind in ("ndarray", "npscalar"):
            return leaf_value(kind, tensor)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = f"a leaf does not fit its stored tensor: {error}"
        raise CheckpointCorruptError(source.path, reason) from error
    if kind == "generator":
        return _generator(leaf, tensor, source.path)
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    if kind == "parameter":
        return torch.nn.Parameter(tensor, requires_grad=bool(leaf.get("requires_grad")))
    if kind != "tensor":
        raise CheckpointCorruptError(source.path, f"unknown leaf kind {kind!r}")
    return tensor
