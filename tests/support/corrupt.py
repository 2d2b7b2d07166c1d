"""Damage checkpoint files on purpose: flip bits, cut them short, fake newer versions.

Shared by the core's tests and the CLI tests. Every helper edits the file in place
and works on real bytes, exactly as disk or copy errors would.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ckptkit._file.digest import header_checksum_span, header_digest
from ckptkit._file.format import (
    HEADER_ALIGNMENT,
    KEY_FORMAT_VERSION,
    LENGTH_PREFIX_BYTES,
)


def flip_bit(path: str | os.PathLike[str], bit_index: int) -> None:
    """Flip one bit of the file; bit ``i`` is bit ``i % 8`` of byte ``i // 8``."""
    target = Path(path)
    data = bytearray(target.read_bytes())
    byte, bit = divmod(bit_index, 8)
    if not 0 <= byte < len(data):
        msg = f"bit {bit_index} is outside {target} ({len(data)} bytes)"
        raise IndexError(msg)
    data[byte] ^= 1 << bit
    target.write_bytes(bytes(data))


def truncate(path: str | os.PathLike[str], length: int) -> None:
    """Cut the file to its first ``length`` bytes."""
    os.truncate(path, length)


def header_region(path: str | os.PathLike[str]) -> tuple[int, bytes]:
    """Return ``(data start, length prefix + header bytes)`` of a safetensors file."""
    raw = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:LENGTH_PREFIX_BYTES])
    data_start = LENGTH_PREFIX_BYTES + header_len
    return data_start, raw[:data_start]


def tensor_data_offset(path: str | os.PathLike[str]) -> int:
    """Byte offset at which a safetensors (or ckptkit) file's tensor bytes begin."""
    return header_region(path)[0]


def flip_tensor_bit(path: str | os.PathLike[str], bit_in_data: int = 3) -> None:
    """Flip one bit inside the tensor bytes (after the header)."""
    flip_bit(path, tensor_data_offset(path) * 8 + bit_in_data)


def rewrite_header(path: str | os.PathLike[str], old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` once in a ckptkit header, keeping it valid.

    The header is re-padded, the length prefix updated and the header checksum
    recomputed, so the file is intact apart from the edited value.
    """
    target = Path(path)
    raw = target.read_bytes()
    data_start, region = header_region(target)
    header = region[LENGTH_PREFIX_BYTES:]
    if header.count(old) != 1:
        msg = f"{old!r} occurs {header.count(old)} times in the header of {target}"
        raise ValueError(msg)
    header = header.replace(old, new).rstrip(b" ")
    header += b" " * (-len(header) % HEADER_ALIGNMENT)
    region = struct.pack("<Q", len(header)) + header
    span = header_checksum_span(region)
    if span is None:
        msg = f"{target} has no ckptkit header checksum"
        raise ValueError(msg)
    checksum = header_digest(region, span).encode("ascii")
    region = region[: span[0]] + checksum + region[span[1] :]
    target.write_bytes(region + raw[data_start:])


def make_future_version(path: str | os.PathLike[str], format_version: int = 99) -> None:
    """Make a ckptkit file claim a newer container format, with a valid checksum."""
    key = json.dumps(KEY_FORMAT_VERSION).encode()
    field = key + b":"
    _, region = header_region(path)
    start = region.index(field) + len(field)
    end = region.index(b'"', start + 1) + 1
    rewrite_header(path, field + region[start:end], field + b'"%d"' % format_version)
