"""A sequence's embedding does not depend on what else is in its batch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..support.tiny_models import (
    AMINO_ACIDS,
    BASES,
    load_quietly,
    write_tiny_dnabert,
    write_tiny_esm,
)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("models")
    return {
        "dnabert": load_quietly(
            "dnabert",
            write_tiny_dnabert(root / "dnabert", num_heads=12, hidden_size=96),
        ),
        "esm": load_quietly("esm", write_tiny_esm(root)),
    }


def _sequences(kind: str) -> st.SearchStrategy[str]:
    letters = BASES if kind == "dnabert" else AMINO_ACIDS
    return st.text(alphabet=letters, min_size=1, max_size=250)


@settings(max_examples=25)
@given(data=st.data(), kind=st.sampled_from(["dnabert", "esm"]))
def test_embedding_is_independent_of_batch_companions(
    encoders: dict[str, object], data: st.DataObject, kind: str
) -> None:
    encoder = encoders[kind]
    target = data.draw(_sequences(kind), label="target")
    others = data.draw(st.lists(_sequences(kind), max_size=10), label="others")
    position = data.draw(st.integers(0, len(others)), label="position")
    budget = data.draw(st.sampled_from([32, 300, 2000, 100_000]), label="budget")
    batch = [*others[:position], target, *others[position:]]
    alone = encoder.embed(["t"], [target])  # type: ignore[attr-defined]
    together = encoder.embed(  # type: ignore[attr-defined]
        [f"s{i}" for i in range(len(batch))], batch, tokens_per_batch=budget
    )
    assert (together[position] - alone[0]).abs().max().item() <= TOLERANCE
