"""Chunk coordinates: the original's examples, including its uneven tail."""

from __future__ import annotations

import numpy as np
import pytest

from virnucpro_app.chunking import chunk_bounds, chunk_id, plan_chunks


@pytest.mark.parametrize(
    ("length_bp", "chunk_size_bp", "expected"),
    [
        (301, 300, [(0, 300), (150, 301)]),
        (601, 300, [(0, 300), (200, 500), (400, 601)]),
        (1001, 300, [(0, 300), (250, 550), (500, 800), (750, 1001)]),
        (1499, 300, [(0, 300), (299, 599), (599, 899), (899, 1199), (1199, 1499)]),
        (501, 500, [(0, 500), (250, 501)]),
        (1001, 500, [(0, 500), (333, 833), (666, 1001)]),
    ],
)
def test_chunk_bounds_match_the_originals_examples(
    length_bp: int, chunk_size_bp: int, expected: list[tuple[int, int]]
) -> None:
    assert chunk_bounds(length_bp, chunk_size_bp) == expected


def test_chunk_bounds_keep_the_short_last_chunk() -> None:
    """L = 1001, c = 300: the shifts sum to 150 < R = 199, so the tail is 251 bp."""
    last_start, last_end = chunk_bounds(1001, 300)[-1]
    assert last_end - last_start == 251


def test_chunk_bounds_length_equal_to_chunk_size_is_one_chunk() -> None:
    assert chunk_bounds(500, 500) == [(0, 500)]


def test_chunk_bounds_shorter_than_chunk_size_is_one_short_chunk() -> None:
    assert chunk_bounds(30, 300) == [(0, 30)]


def test_chunk_bounds_multiple_of_chunk_size_has_no_overlap() -> None:
    assert chunk_bounds(900, 300) == [(0, 300), (300, 600), (600, 900)]


def test_chunk_bounds_10001_bp_by_500_gives_21_chunks_ending_9520_10001() -> None:
    bounds = chunk_bounds(10001, 500)
    assert len(bounds) == 21
    assert bounds[-1] == (9520, 10001)
    assert bounds[1] == (476, 976)


def test_chunk_bounds_refuses_an_empty_sequence() -> None:
    with pytest.raises(ValueError, match="empty sequence"):
        chunk_bounds(0, 300)


def test_chunk_bounds_refuses_a_chunk_size_below_one() -> None:
    with pytest.raises(ValueError, match="positive"):
        chunk_bounds(10, 0)


def test_chunk_id_appends_the_one_based_chunk_number() -> None:
    assert chunk_id("contig7", 3) == "contig7_chunk_3"


def test_plan_chunks_equals_chunk_bounds_record_by_record() -> None:
    lengths = np.array([1, 299, 300, 301, 1001, 10001, 7], dtype=np.int64)
    plan = plan_chunks(lengths, 300)
    got = {}
    for record, start, length in zip(
        plan.record.tolist(), plan.start.tolist(), plan.length.tolist(), strict=True
    ):
        got.setdefault(record, []).append((start, start + length))
    expected = {i: chunk_bounds(int(n), 300) for i, n in enumerate(lengths)}
    assert got == expected
    assert plan.first_chunk.tolist()[-1] == plan.record.size
    assert plan.number.tolist()[:3] == [0, 0, 0]


def test_plan_chunks_refuses_an_empty_sequence() -> None:
    with pytest.raises(ValueError, match="empty sequence"):
        plan_chunks(np.array([5, 0], dtype=np.int64), 300)
