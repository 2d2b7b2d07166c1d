"""Token-budget batching, de-duplication and the out-of-memory back-off."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.errors import PipelineError
from virnucpro_app.models.batching import (
    MAX_PADDING_FRACTION,
    dedupe,
    padded_tokens,
    plan_batches,
    run_with_backoff,
)

lengths_lists = st.lists(st.integers(1, 600), min_size=0, max_size=80)
budgets = st.integers(1, 5000)


@given(lengths=lengths_lists, budget=budgets)
def test_every_sequence_is_planned_exactly_once(
    lengths: list[int], budget: int
) -> None:
    batches = plan_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


@given(lengths=lengths_lists, budget=budgets)
def test_batches_respect_budget_and_padding_limit(
    lengths: list[int], budget: int
) -> None:
    for batch in plan_batches(lengths, budget):
        padded = padded_tokens(lengths, batch)
        real = sum(lengths[i] for i in batch)
        if len(batch) > 1:
            assert padded <= budget
        assert padded - real <= MAX_PADDING_FRACTION * padded


@given(lengths=st.lists(st.integers(1, 600), min_size=1, max_size=80), budget=budgets)
def test_batches_come_longest_first(lengths: list[int], budget: int) -> None:
    flat = [lengths[i] for b in plan_batches(lengths, budget) for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_total_padding_is_under_ten_percent_for_realistic_lengths() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = (torch.randint(20, 170, (5000,), generator=gen)).tolist()
    batches = plan_batches(lengths, 4096)
    padded = sum(padded_tokens(lengths, b) for b in batches)
    assert (padded - sum(lengths)) / padded < MAX_PADDING_FRACTION


def test_rejects_non_positive_budget() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_batches([1, 2], 0)


@given(st.lists(st.sampled_from(["A", "C", "AC", "GT"]), max_size=30))
def test_dedupe_inverse_rebuilds_input(sequences: list[str]) -> None:
    unique, inverse = dedupe(sequences)
    assert [unique[i] for i in inverse] == sequences
    assert len(set(unique)) == len(unique)


def _fake_oom(limit: int, lengths: list[int], log: list[list[int]]):
    def run(batch: list[int]) -> None:
        if padded_tokens(lengths, batch) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        log.append(batch)

    return run


@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=60),
    limit=st.integers(50, 400),
)
def test_backoff_halves_budget_until_batches_fit_and_runs_everything(
    lengths: list[int], limit: int
) -> None:
    done: list[list[int]] = []
    backoffs: list[tuple[int, int]] = []
    final = run_with_backoff(
        lengths,
        4096,
        _fake_oom(limit, lengths, done),
        is_out_of_memory=lambda e: isinstance(e, torch.cuda.OutOfMemoryError),
        on_backoff=lambda old, new: backoffs.append((old, new)),
    )
    assert sorted(i for b in done for i in b) == list(range(len(lengths)))
    assert all(padded_tokens(lengths, b) <= limit for b in done)
    for old, new in backoffs:
        assert new <= old // 2
    assert final == (backoffs[-1][1] if backoffs else 4096)


def test_backoff_lets_other_errors_through() -> None:
    def run(batch: list[int]) -> None:
        raise KeyError("not memory")

    with pytest.raises(KeyError):
        run_with_backoff([5], 10, run, is_out_of_memory=lambda _e: False)


def test_backoff_gives_up_on_a_single_sequence_that_does_not_fit() -> None:
    with pytest.raises(PipelineError, match="single sequence of 900 tokens"):
        run_with_backoff(
            [900],
            4096,
            _fake_oom(100, [900], []),
            is_out_of_memory=lambda _e: True,
        )
