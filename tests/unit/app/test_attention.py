"""Packed attention equals attention run on each sequence alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.errors import PipelineError
from virnucpro_app.models import attention
from virnucpro_app.models.attention import (
    AttentionBackend,
    alibi_bias,
    attend,
    choose_backend,
    prepare_attention,
    probe_backend,
)
from virnucpro_app.models.dnabert import alibi_slopes
from virnucpro_app.models.packing import pack


def _alone(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: torch.Tensor | None
) -> torch.Tensor:
    """Plain softmax attention of one sequence ``[L, H, D]``."""
    q, k, v = (x.transpose(0, 1) for x in (q, k, v))
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
    if slopes is not None:
        pos = torch.arange(q.shape[1])
        scores = scores - slopes[:, None, None] * (pos[None, :] - pos[:, None]).abs()
    return (scores.softmax(-1) @ v).transpose(0, 1)


@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    heads=st.sampled_from([1, 3, 4, 6]),
    use_alibi=st.booleans(),
)
def test_packed_sdpa_equals_each_sequence_alone(
    lengths: list[int], heads: int, use_alibi: bool
) -> None:
    batch = pack(
        [np.zeros(n, dtype=np.int64) for n in lengths], [(0, n) for n in lengths]
    )
    gen = torch.Generator().manual_seed(sum(lengths) + heads)
    q, k, v = (torch.randn(batch.num_tokens, heads, 8, generator=gen) for _ in range(3))
    slopes = torch.tensor(alibi_slopes(heads)) if use_alibi else None
    inputs = prepare_attention(
        batch, AttentionBackend.SDPA, dtype=torch.float32, alibi_slopes=slopes
    )
    got = attend(q, k, v, inputs)
    start = 0
    for n in lengths:
        part = slice(start, start + n)
        assert torch.allclose(
            got[part], _alone(q[part], k[part], v[part], slopes), atol=1e-5
        )
        start += n


def test_uniform_lengths_need_no_scatter_and_no_mask() -> None:
    batch = pack([np.zeros(5, dtype=np.int64)] * 3, [(0, 5)] * 3)
    inputs = prepare_attention(batch, AttentionBackend.SDPA, dtype=torch.float32)
    assert inputs.pad_index is None
    assert inputs.mask is None


def test_alibi_bias_is_symmetric_and_negative_distance() -> None:
    bias = alibi_bias(torch.tensor([0.5, 0.25]), 4)
    assert bias.shape == (2, 4, 4)
    assert torch.equal(bias, bias.transpose(1, 2))
    assert bias[0, 0, 3].item() == -1.5
    assert bias[1, 2, 1].item() == -0.25


def test_cpu_and_fp32_always_use_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(attention.BACKEND_ENV, raising=False)
    assert (
        choose_backend(torch.device("cpu"), torch.bfloat16, alibi=False)
        is AttentionBackend.SDPA
    )
    assert (
        choose_backend(torch.device("cpu"), torch.float32, alibi=True)
        is AttentionBackend.SDPA
    )


def test_environment_forces_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(attention.BACKEND_ENV, "torch-varlen")
    assert (
        choose_backend(torch.device("cpu"), torch.float32, alibi=False)
        is AttentionBackend.TORCH_VARLEN
    )


def test_forced_varlen_falls_back_to_sdpa_for_an_alibi_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torch's varlen kernel has no bias: forced on DNABERT-S it would drop ALiBi."""
    monkeypatch.setenv(attention.BACKEND_ENV, "torch-varlen")
    with pytest.warns(RuntimeWarning, match="no ALiBi bias"):
        backend = choose_backend(torch.device("cpu"), torch.bfloat16, alibi=True)
    assert backend is AttentionBackend.SDPA


def test_forced_unknown_backend_is_an_app_error_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(attention.BACKEND_ENV, "fastest")
    with pytest.raises(PipelineError, match=r"VIRNUCPRO_ATTENTION='fastest'.*sdpa"):
        choose_backend(torch.device("cpu"), torch.float32, alibi=False)


def test_probe_reports_a_backend_that_cannot_run_here() -> None:
    """torch's varlen kernel has no CPU implementation: the probe says so."""
    problem = probe_backend(
        AttentionBackend.TORCH_VARLEN, torch.device("cpu"), torch.float32, alibi=False
    )
    assert problem is not None


def test_probe_accepts_sdpa_itself() -> None:
    assert (
        probe_backend(
            AttentionBackend.SDPA, torch.device("cpu"), torch.float32, alibi=True
        )
        is None
    )
