"""Checksums: xxh3-64 over tensor bytes and over the header.

xxh3 runs at more than 10 GB/s on one core (bench/bench_checksum.py), so hashing
never limits save or validation speed, which are bound by the disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import xxhash

from ckptkit._file.format import CHECKSUM_HEX_WIDTH, KEY_HEADER_CHECKSUM
from ckptkit.errors import CheckpointCorruptError, ChecksumMismatchError

if TYPE_CHECKING:
    from pathlib import Path


#: The xxh3-64 checksum of some bytes as 16 hex digits: ``digest(data)``.
digest = xxhash.xxh3_64_hexdigest
#: An xxh3-64 checksum fed piece by piece (``update``, then ``hexdigest``).
StreamingDigest = xxhash.xxh3_64


_CHECKSUM_FIELD = f'"{KEY_HEADER_CHECKSUM}":"'.encode()


def header_checksum_span(header_region: bytes) -> tuple[int, int] | None:
    """Locate the header checksum's hex digits inside the raw header bytes."""
    start = header_region.find(_CHECKSUM_FIELD)
    if start < 0 or header_region.find(_CHECKSUM_FIELD, start + 1) >= 0:
        return None
    begin = start + len(_CHECKSUM_FIELD)
    return begin, begin + CHECKSUM_HEX_WIDTH


def header_digest(prefix_and_header: bytes, span: tuple[int, int]) -> str:
    """Checksum of the length prefix and header with the checksum field zeroed."""
    begin, end = span
    zeroed = b"".join(
        (prefix_and_header[:begin], b"0" * (end - begin), prefix_and_header[end:])
    )
    return digest(zeroed)


def with_header_checksum(region: bytes) -> bytes:
    """``region`` with its checksum field (written as zeros) set to its xxh3."""
    span = header_checksum_span(region)
    if span is None:  # pragma: no cover - the writers just wrote the field once
        msg = "internal error: header checksum field not found"
        raise RuntimeError(msg)
    value = header_digest(region, span).encode("ascii")
    return region[: span[0]] + value + region[span[1] :]


def check_header_checksum(
    path: Path, region: bytes, *, what: tuple[str, str], fix: str
) -> None:
    """Check the xxh3 a header (or a sharded checkpoint's index) carries of itself.

    ``region`` is the bytes the checksum covers, its own field included; the
    messages name the field's owner ``what[0]`` and the damaged thing ``what[1]``,
    and tell the reader to ``fix``.

    Raises:
        CheckpointCorruptError: The checksum field is missing or damaged.
        ChecksumMismatchError: The bytes do not match it.
    """
    span = header_checksum_span(region)
    if span is None:
        reason = f"{what[0]} checksum field is missing or damaged"
        raise CheckpointCorruptError(path, reason)
    stored = region[span[0] : span[1]].decode("ascii", errors="replace")
    if header_digest(region, span) != stored:
        reason = f"{what[1]} checksum mismatch: the {what[1]} is damaged; {fix}"
        raise ChecksumMismatchError(path, reason)
