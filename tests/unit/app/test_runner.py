"""The shared embedding loop, driven by a fake backbone (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from virnucpro_app.errors import InputError
from virnucpro_app.models import runner
from virnucpro_app.models.packing import PackedBatch, pool_mean
from virnucpro_app.models.runner import Batching, embed_sequences


class FakeBackbone:
    """Embedding = mean of (token id, position) over the pooled span."""

    embedding_dim = 2

    def __init__(self, oom_above: int | None = None) -> None:
        self.tokenized: list[str] = []
        self.batches: list[int] = []
        self.oom_above = oom_above

    def tokenize(self, ids: list[str], sequences: list[str]) -> list[np.ndarray]:
        assert len(ids) == len(sequences)
        self.tokenized.extend(sequences)
        return [np.array([0, *(ord(c) for c in s), 1]) for s in sequences]

    def pool_span(self, num_tokens: int) -> tuple[int, int]:
        return 1, num_tokens - 1

    def forward_pooled(self, batch: PackedBatch) -> torch.Tensor:
        padded = batch.num_sequences * batch.max_length
        if self.oom_above is not None and padded > self.oom_above:
            raise torch.cuda.OutOfMemoryError("fake OOM")
        self.batches.append(batch.num_sequences)
        hidden = torch.stack([batch.token_ids.float(), batch.positions.float()], dim=1)
        return pool_mean(hidden, batch)


def _expected(sequences: list[str]) -> torch.Tensor:
    rows = []
    for s in sequences:
        codes = [float(ord(c)) for c in s]
        rows.append([sum(codes) / len(codes), sum(range(1, len(s) + 1)) / len(s)])
    return torch.tensor(rows)


SEQUENCES = ["ACGT", "A", "GGGGGGGG", "ACGT", "TT", "A", "CCCCC"]
IDS = [f"r{i}" for i in range(len(SEQUENCES))]


def test_rows_come_back_in_input_order_as_float32() -> None:
    out = embed_sequences(
        FakeBackbone(), IDS, SEQUENCES, Batching(torch.device("cpu"), 12)
    )
    assert out.dtype == torch.float32
    assert torch.allclose(out, _expected(SEQUENCES))


def test_identical_sequences_are_computed_once() -> None:
    backbone = FakeBackbone()
    embed_sequences(backbone, IDS, SEQUENCES, Batching(torch.device("cpu"), 64))
    assert sorted(backbone.tokenized) == sorted(set(SEQUENCES))
    assert sum(backbone.batches) == len(set(SEQUENCES))


def test_progress_counts_every_input_sequence_and_token() -> None:
    seen = {"sequences": 0, "tokens": 0}

    def progress(sequences: int, tokens: int) -> None:
        seen["sequences"] += sequences
        seen["tokens"] += tokens

    embed_sequences(
        FakeBackbone(),
        IDS,
        SEQUENCES,
        Batching(torch.device("cpu"), 20),
        progress=progress,
    )
    assert seen["sequences"] == len(SEQUENCES)
    assert seen["tokens"] == sum(len(s) + 2 for s in set(SEQUENCES))


def test_out_of_memory_halves_the_budget_warns_and_gives_the_same_result() -> None:
    backbone = FakeBackbone(oom_above=12)
    with pytest.warns(RuntimeWarning, match="out of GPU memory"):
        out = embed_sequences(
            backbone, IDS, SEQUENCES, Batching(torch.device("cpu"), 64)
        )
    assert torch.allclose(out, _expected(SEQUENCES))


def test_windows_are_tokenized_ahead_and_all_computed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "WINDOW_SEQUENCES", 2)
    out = embed_sequences(
        FakeBackbone(), IDS, SEQUENCES, Batching(torch.device("cpu"), 64)
    )
    assert torch.allclose(out, _expected(SEQUENCES))


def test_empty_sequence_is_an_input_error_naming_the_record() -> None:
    with pytest.raises(InputError, match="'r1'"):
        embed_sequences(
            FakeBackbone(),
            ["r0", "r1"],
            ["AC", ""],
            Batching(torch.device("cpu"), 64),
        )


def test_no_sequences_give_an_empty_matrix() -> None:
    out = embed_sequences(FakeBackbone(), [], [], Batching(torch.device("cpu"), 8))
    assert out.shape == (0, 2)
