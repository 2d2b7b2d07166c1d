"""Packed layout and segment pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.models.packing import pack, pool_mean


def test_pack_lays_out_tokens_positions_and_boundaries() -> None:
    batch = pack(
        [np.array([7, 8, 9]), np.array([4]), np.array([5, 6])], [(0, 3), (0, 1), (1, 2)]
    )
    assert batch.token_ids.tolist() == [7, 8, 9, 4, 5, 6]
    assert batch.positions.tolist() == [0, 1, 2, 0, 0, 1]
    assert batch.seq_index.tolist() == [0, 0, 0, 1, 2, 2]
    assert batch.cu_seqlens.tolist() == [0, 3, 4, 6]
    assert batch.cu_seqlens.dtype == torch.int32
    assert batch.pool_weight.tolist() == pytest.approx([1 / 3] * 3 + [1.0, 0.0, 1.0])
    assert (batch.num_sequences, batch.num_tokens, batch.max_length) == (3, 6, 3)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.data())
def test_pool_mean_equals_per_sequence_slice_mean(
    lengths: list[int], data: st.DataObject
) -> None:
    spans = []
    for n in lengths:
        start = data.draw(st.integers(0, n - 1))
        spans.append((start, data.draw(st.integers(start + 1, n))))
    batch = pack([np.arange(n) for n in lengths], spans)
    hidden = torch.randn(batch.num_tokens, 5, dtype=torch.float64).to(torch.bfloat16)
    pooled = pool_mean(hidden, batch)
    assert pooled.dtype == torch.float32
    offset = 0
    for row, (n, (start, stop)) in enumerate(zip(lengths, spans, strict=True)):
        want = hidden[offset + start : offset + stop].float().mean(0)
        assert torch.allclose(pooled[row], want, atol=1e-6)
        offset += n


def test_pack_refuses_empty_sequences_and_empty_spans() -> None:
    with pytest.raises(ValueError, match="empty"):
        pack([np.array([], dtype=np.int64)], [(0, 0)])
    with pytest.raises(ValueError, match="pooled"):
        pack([np.array([1, 2])], [(1, 1)])
