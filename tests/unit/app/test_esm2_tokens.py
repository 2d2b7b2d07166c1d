"""ESM-2 tokenization equals fair-esm's alphabet and batch converter."""

from __future__ import annotations

import esm
import pytest
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.errors import InputError
from virnucpro_app.models.esm2 import ESM_TOKENS, MAX_POOLED_RESIDUES, tokenize_protein

RESIDUES = "".join(t for t in ESM_TOKENS if len(t) == 1)


def test_alphabet_is_fair_esms() -> None:
    assert list(ESM_TOKENS) == esm.Alphabet.from_architecture("ESM-1b").all_toks


def test_known_example() -> None:
    assert tokenize_protein("x", "MKTAYIAK").tolist() == [
        0,
        20,
        15,
        11,
        5,
        19,
        12,
        5,
        15,
        2,
    ]


@given(st.text(alphabet=RESIDUES, min_size=1, max_size=50))
def test_tokens_equal_fair_esm_batch_converter(sequence: str) -> None:
    converter = esm.Alphabet.from_architecture("ESM-1b").get_batch_converter()
    _, _, tokens = converter([("x", sequence)])
    assert tokenize_protein("x", sequence).tolist() == tokens[0].tolist()


@pytest.mark.parametrize(
    ("sequence", "bad"), [("MK*A", "'*'"), ("mka", "'m'"), ("MKé", "'é'")]
)
def test_unknown_letters_name_record_letter_and_position(
    sequence: str, bad: str
) -> None:
    with pytest.raises(InputError, match=f"record 'p7': character {bad}"):
        tokenize_protein("p7", sequence)


def test_pool_limit_is_virnucpros() -> None:
    assert MAX_POOLED_RESIDUES == 1024
