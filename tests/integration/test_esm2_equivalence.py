"""Our ESM-2 equals fair-esm's own forward pass plus VirNucPro's pooling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ..support.tiny_models import (
    AMINO_ACIDS,
    fair_esm_embed,
    load_fair_esm,
    load_quietly,
    write_tiny_esm,
)

TOLERANCE = 1e-5

proteins = st.text(alphabet=AMINO_ACIDS + "XBUZO", min_size=1, max_size=200)
protein_sets = st.lists(proteins, min_size=1, max_size=8)
budgets = st.sampled_from([16, 100, 333, 1024, 4096])


@pytest.fixture(scope="module")
def esm_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_esm(tmp_path_factory.mktemp("esm"), embed_dim=80, num_heads=5)


@pytest.fixture(scope="module")
def fair_esm(esm_files: Path) -> tuple[torch.nn.Module, object]:
    return load_fair_esm(esm_files)


@pytest.fixture(scope="module")
def encoder(esm_files: Path):
    return load_quietly("esm", esm_files)


# Fewer examples than the profile: each one runs fair-esm as the reference.
@settings(max_examples=20)
@given(sequences=protein_sets, budget=budgets)
def test_esm2_equals_fair_esm_for_random_protein_sets(
    fair_esm: tuple[torch.nn.Module, object],
    encoder,
    sequences: list[str],
    budget: int,
) -> None:
    model, alphabet = fair_esm
    expected = fair_esm_embed(model, alphabet, sequences)
    ids = [f"p{i}" for i in range(len(sequences))]
    got = encoder.embed(ids, sequences, tokens_per_batch=budget)
    assert got.dtype == torch.float32
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_esm2_pools_first_1024_residues_but_attends_over_all(
    fair_esm: tuple[torch.nn.Module, object],
    encoder,
) -> None:
    """Above 1024 residues the mean stops at 1024 while the forward sees all."""
    gen = torch.Generator().manual_seed(3)
    picks = torch.randint(len(AMINO_ACIDS), (1100,), generator=gen).tolist()
    long = "".join(AMINO_ACIDS[i] for i in picks)
    sequences = [long, long[:1030], long[:20]]
    model, alphabet = fair_esm
    expected = fair_esm_embed(model, alphabet, sequences)
    got = encoder.embed(["a", "b", "c"], sequences)
    assert (got - expected).abs().max().item() <= TOLERANCE
    # the 1024 cut is real: the two long proteins share their first 1024
    # residues yet differ, because attention saw their different tails
    assert not torch.allclose(got[0], got[1])


def test_esm2_file_identity_and_dimensions_are_reported(encoder) -> None:
    info = encoder.info
    assert (info.num_layers, info.hidden_size, info.num_heads) == (2, 80, 5)
    assert info.embedding_dim == 80
    assert info.identity.startswith("xxh3_128:")
    assert info.demo is True
