"""Fixed-length chunks, coordinate for coordinate the original's ``split_fasta_chunk``.

For a sequence of length ``L`` and chunk size ``c`` the original computes
``n = ceil(L / c)``, the overhang ``R = n*c - L``, ``q = floor(R / n)``,
``need = R - q*(n - 1)`` and the shift list ``[q+1]*need + [q]*max(0, n-1-need)
+ [0]``; chunk ``k`` starts at ``k*c`` minus the sum of the first ``k`` shifts
and spans ``c`` bases, clipped at ``L``. Summing the list in closed form gives
``start_k = k*(c - q) - min(k, need)``, which is what this module computes, one
record at a time (:func:`chunk_bounds`) or for many at once with numpy
(:func:`plan_chunks`). The shifts can add up to less than ``R``, so the last
chunk is sometimes shorter than ``c``; the published classifiers were trained on
such chunks, so that is kept (docs/app/algorithm.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: The chunk size used when none is given.
DEFAULT_CHUNK_SIZE_BP = 500


def _check_chunk_size(chunk_size_bp: int) -> None:
    if chunk_size_bp < 1:
        raise ValueError(
            f"chunk size must be a positive number of bases, got {chunk_size_bp}"
        )


def chunk_bounds(length_bp: int, chunk_size_bp: int) -> list[tuple[int, int]]:
    """The half-open ``[start, end)`` of each chunk of one sequence.

    Args:
        length_bp: Length of the sequence, at least 1.
        chunk_size_bp: Chunk size, at least 1 (the published models use 300 or 500).

    Returns:
        ``ceil(length_bp / chunk_size_bp)`` pairs, in order.

    Raises:
        ValueError: For an empty sequence (the original divides by zero) or a
            chunk size below 1.

    Example:
        >>> chunk_bounds(1001, 300)
        [(0, 300), (250, 550), (500, 800), (750, 1001)]
    """
    _check_chunk_size(chunk_size_bp)
    if length_bp < 1:
        raise ValueError(f"cannot chunk an empty sequence (length {length_bp})")
    num_chunks = -(-length_bp // chunk_size_bp)
    overhang = num_chunks * chunk_size_bp - length_bp
    # int(R / n) in the original: R < c, so float division floors the same way.
    base_shift = overhang // num_chunks
    need = overhang - base_shift * (num_chunks - 1)
    bounds = []
    for k in range(num_chunks):
        start = k * (chunk_size_bp - base_shift) - min(k, need)
        bounds.append((start, min(start + chunk_size_bp, length_bp)))
    return bounds


def chunk_id(record_id: str, number: int) -> str:
    """``{record_id}_chunk_{number}``: the ID of chunk ``number`` (1-based)."""
    return f"{record_id}_chunk_{number}"


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Where the chunks of several records lie, one array entry per chunk.

    Attributes:
        record: Position of the chunk's record in the ``lengths`` given.
        number: 0-based position of the chunk within its record.
        start: Start of the chunk in its record.
        length: Length of the chunk (``chunk_size_bp`` or less for a tail).
        first_chunk: For each record, the position of its first chunk here,
            plus one final entry holding the total number of chunks.
    """

    record: NDArray[np.int64]
    number: NDArray[np.int64]
    start: NDArray[np.int64]
    length: NDArray[np.int64]
    first_chunk: NDArray[np.int64]


def plan_chunks(lengths: NDArray[np.int64], chunk_size_bp: int) -> ChunkPlan:
    """Chunk every record at once; equal to :func:`chunk_bounds` record by record.

    Returns:
        The chunks of all records, records in order, chunks in order within each.

    Raises:
        ValueError: If a length is below 1 or the chunk size is below 1.
    """
    _check_chunk_size(chunk_size_bp)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and int(lengths.min()) < 1:
        raise ValueError("cannot chunk an empty sequence (length 0)")
    num_chunks = -(-lengths // chunk_size_bp)
    overhang = num_chunks * chunk_size_bp - lengths
    base_shift = overhang // np.maximum(num_chunks, 1)
    need = overhang - base_shift * (num_chunks - 1)
    first_chunk = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(num_chunks, out=first_chunk[1:])
    record = np.repeat(np.arange(lengths.size, dtype=np.int64), num_chunks)
    number = np.arange(record.size, dtype=np.int64) - first_chunk[record]
    start = number * (chunk_size_bp - base_shift[record]) - np.minimum(
        number, need[record]
    )
    length = np.minimum(start + chunk_size_bp, lengths[record]) - start
    return ChunkPlan(
        record=record,
        number=number,
        start=start,
        length=length,
        first_chunk=first_chunk,
    )
