"""Packed batches: sequences laid end to end, no padding, plus pooling by segment.

Layout (the one FlashAttention's varlen kernels use): ``token_ids [T]`` holds the
batch's sequences back to back, ``cu_seqlens [B+1]`` their boundaries,
``positions [T]`` each token's index inside its own sequence (RoPE angle, ALiBi
distance) and ``seq_index [T]`` which sequence it belongs to. Token-wise layers
(embeddings, linear layers, LayerNorm, MLP) run on ``[T, width]`` directly; only
attention needs the boundaries (``virnucpro_app.models.attention``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


@dataclass(frozen=True)
class PackedBatch:
    """One batch of sequences, packed.

    Attributes:
        token_ids: ``[T]`` int64 token ids, sequences back to back.
        positions: ``[T]`` int64 position of each token within its sequence.
        seq_index: ``[T]`` int64 index of each token's sequence in the batch.
        cu_seqlens: ``[B+1]`` int32 cumulative lengths (0 first).
        pool_weight: ``[T]`` float32: ``1/n`` for the ``n`` tokens a sequence's
            mean covers, 0 for the tokens it leaves out.
        lengths: Token count of each sequence.
    """

    token_ids: torch.Tensor
    positions: torch.Tensor
    seq_index: torch.Tensor
    cu_seqlens: torch.Tensor
    pool_weight: torch.Tensor
    lengths: tuple[int, ...]

    @property
    def num_sequences(self) -> int:
        """Sequences in the batch."""
        return len(self.lengths)

    @property
    def num_tokens(self) -> int:
        """Tokens in the batch (no padding)."""
        return sum(self.lengths)

    @property
    def max_length(self) -> int:
        """Length of the longest sequence."""
        return max(self.lengths)

    def pin_memory(self) -> PackedBatch:
        """Copy to page-locked host memory so the transfer to a GPU can overlap."""
        return self._map(lambda t: t.pin_memory())

    def to(
        self, device: torch.device | str, *, non_blocking: bool = False
    ) -> PackedBatch:
        """Move every tensor to ``device``.

        Args:
            device: The target device.
            non_blocking: Asynchronous copy (needs pinned memory to overlap).
        """
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def _map(self, func: Callable[[torch.Tensor], torch.Tensor]) -> PackedBatch:
        return replace(
            self,
            token_ids=func(self.token_ids),
            positions=func(self.positions),
            seq_index=func(self.seq_index),
            cu_seqlens=func(self.cu_seqlens),
            pool_weight=func(self.pool_weight),
        )


def pack(
    token_arrays: Sequence[np.ndarray],
    pool_spans: Sequence[tuple[int, int]],
) -> PackedBatch:
    """Pack tokenized sequences into one batch.

    Args:
        token_arrays: One int array of token ids per sequence.
        pool_spans: Per sequence, the ``[start, stop)`` token positions its mean
            embedding covers.

    Returns:
        The packed batch, on the CPU.

    Raises:
        ValueError: An empty sequence or an empty pooling span.
    """
    lengths = np.fromiter((len(a) for a in token_arrays), dtype=np.int64)
    if lengths.size == 0 or (lengths == 0).any():
        msg = "cannot pack an empty batch or an empty sequence"
        raise ValueError(msg)
    total = int(lengths.sum())
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    seq_index = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    positions = np.arange(total, dtype=np.int64) - starts[:-1][seq_index]
    spans = np.asarray(pool_spans, dtype=np.int64).reshape(len(lengths), 2)
    counts = spans[:, 1] - spans[:, 0]
    if (counts <= 0).any():
        msg = "every sequence needs at least one pooled token"
        raise ValueError(msg)
    inside = (positions >= spans[seq_index, 0]) & (positions < spans[seq_index, 1])
    weight = np.where(inside, 1.0 / counts[seq_index], 0.0).astype(np.float32)
    return PackedBatch(
        token_ids=torch.from_numpy(np.concatenate(token_arrays).astype(np.int64)),
        positions=torch.from_numpy(positions),
        seq_index=torch.from_numpy(seq_index),
        cu_seqlens=torch.from_numpy(starts.astype(np.int32)),
        pool_weight=torch.from_numpy(weight),
        lengths=tuple(int(n) for n in lengths),
    )


def pool_mean(hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    """Mean of each sequence's pooled tokens, accumulated in float32.

    The weighted tokens are laid out as ``[B, L, width]`` (each at its own slot,
    padding zero) and summed over ``L``: the same order of additions on every
    device, unlike an atomic ``index_add_`` on CUDA.

    Args:
        hidden: ``[T, width]`` hidden states of the packed batch.
        batch: The batch (on the same device).

    Returns:
        ``[B, width]`` float32 embeddings.
    """
    num, length = batch.num_sequences, batch.max_length
    weighted = hidden.float() * batch.pool_weight[:, None]
    grid = weighted.new_zeros(num * length, hidden.shape[1])
    grid[batch.seq_index * length + batch.positions] = weighted
    return grid.view(num, length, -1).sum(dim=1)
