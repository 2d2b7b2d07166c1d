"""DNABERT-S pieces: ALiBi slopes and key-name handling."""

from __future__ import annotations

import pytest

from virnucpro_app.models.dnabert import alibi_slopes
from virnucpro_app.models.dnabert_files import _normalise_name

# models.md A4: MosaicBERT slopes for DNABERT-S's 12 heads, in head order.
TWELVE_HEADS = [
    2**-1, 2**-2, 2**-3, 2**-4, 2**-5, 2**-6, 2**-7, 2**-8,
    2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5,
]  # fmt: skip


def test_twelve_head_slopes_are_the_published_ones() -> None:
    assert alibi_slopes(12) == pytest.approx(TWELVE_HEADS, rel=1e-12)


@pytest.mark.parametrize("heads", [1, 2, 4, 8, 16])
def test_power_of_two_slopes_are_a_geometric_series_from_2_pow_minus_8_over_n(
    heads: int,
) -> None:
    start = 2 ** (-8 / heads)
    assert alibi_slopes(heads) == pytest.approx(
        [start ** (i + 1) for i in range(heads)]
    )


def test_six_heads_take_four_then_every_other_of_eight() -> None:
    eight = alibi_slopes(8)
    assert alibi_slopes(6) == pytest.approx(alibi_slopes(4) + eight[0::2][:2])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bert.encoder.layer.0.mlp.wo.weight", "encoder.layer.0.mlp.wo.weight"),
        ("embeddings.LayerNorm.gamma", "embeddings.LayerNorm.weight"),
        ("bert.embeddings.LayerNorm.beta", "embeddings.LayerNorm.bias"),
        ("pooler.dense.weight", "pooler.dense.weight"),
    ],
)
def test_key_names_are_normalised(name: str, expected: str) -> None:
    assert _normalise_name(name) == expected
