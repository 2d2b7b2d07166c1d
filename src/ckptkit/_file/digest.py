"""Checksums: xxh3-64 over tensor bytes and over the header.

xxh3 runs at more than 10 GB/s on one core (bench/bench_checksum.py), so hashing
never limits save or validation speed, which are bound by the disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import xxhash

from ckptkit._file.format import CHECKSUM_HEX_WIDTH, KEY_HEADER_CHECKSUM

if TYPE_CHECKING:
    from typing_extensions import Buffer


def digest(data: Buffer) -> str:
    """Return the xxh3-64 checksum of ``data`` as 16 hex digits."""
    return xxhash.xxh3_64_hexdigest(data)


class StreamingDigest:
    """An xxh3-64 checksum fed piece by piece."""

    def __init__(self) -> None:
        self._state = xxhash.xxh3_64()

    def update(self, data: Buffer) -> None:
        """Add ``data`` to the checksum."""
        self._state.update(data)

    def hexdigest(self) -> str:
        """The checksum so far as 16 hex digits."""
        return self._state.hexdigest()


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
