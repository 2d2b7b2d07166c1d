"""Our packed DNABERT-S equals a plain one-sequence-at-a-time reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ..support.tiny_models import (
    BASES,
    ReferenceDnabert,
    load_quietly,
    write_tiny_dnabert,
)

TOLERANCE = 1e-5

dna = st.text(alphabet=BASES + "N", min_size=1, max_size=400)
dna_sets = st.lists(dna, min_size=1, max_size=10)
budgets = st.sampled_from([8, 64, 250, 1000, 8192])


@pytest.fixture(scope="module", params=[6, 12], ids=["6-heads", "12-heads"])
def dnabert(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Head counts that are not powers of two exercise the ALiBi slope rule."""
    heads = request.param
    folder = write_tiny_dnabert(
        tmp_path_factory.mktemp(f"dnabert{heads}"),
        num_heads=heads,
        hidden_size=8 * heads,
    )
    return load_quietly("dnabert", folder), ReferenceDnabert(folder)


@settings(max_examples=20)  # two model fixtures, each with its reference
@given(sequences=dna_sets, budget=budgets)
def test_dnabert_packed_equals_one_at_a_time_reference(
    dnabert,
    sequences: list[str],
    budget: int,
) -> None:
    encoder, reference = dnabert
    expected = reference.embed(sequences)
    got = encoder.embed(
        [f"s{i}" for i in range(len(sequences))], sequences, tokens_per_batch=budget
    )
    assert got.dtype == torch.float32
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_dnabert_mean_includes_cls_and_sep(dnabert) -> None:
    """A one-base sequence is [CLS] X [SEP]: the mean covers all three."""
    encoder, reference = dnabert
    got = encoder.embed(["one"], ["A"])
    assert encoder.tokenize(["one"], ["A"])[0].tolist() == [1, 5, 2]
    assert (got[0] - reference.embed_one("A")).abs().max().item() <= TOLERANCE


def test_dnabert_reports_dimensions(dnabert, tmp_path: Path) -> None:
    encoder, reference = dnabert
    heads = int(reference.config["num_attention_heads"])
    assert (encoder.info.num_heads, encoder.info.embedding_dim) == (heads, 8 * heads)
