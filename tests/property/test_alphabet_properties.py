"""The nucleotide-or-protein rule of ``virnucpro_app.alphabet``, as properties."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.alphabet import (
    PROTEIN_FRACTION,
    SAMPLE_LETTERS,
    SequenceKind,
    check_kind,
    foreign_fraction,
    guess_kind,
)
from virnucpro_app.errors import InputError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: The amino acids that are not A, C, G, T or N.
PROTEIN_ONLY = "DEFHIKLMPQRSVWY"
IUPAC_AMBIGUITY = "RYSWKMBDHV"

dna = st.text(alphabet="ACGTNacgtn", min_size=1, max_size=3_000)


@given(
    sequence=dna,
    ambiguous=st.text(alphabet=IUPAC_AMBIGUITY, max_size=50),
)
def test_dna_with_a_few_ambiguity_codes_looks_like_nucleotide(
    sequence: str, ambiguous: str
) -> None:
    letters = sequence + ambiguous[: len(sequence) // 5]
    assert guess_kind(letters) is SequenceKind.NUCLEOTIDE


@given(
    shared=st.text(alphabet="ACGTN", max_size=500),
    other=st.text(alphabet=PROTEIN_ONLY, min_size=1, max_size=1_500),
)
def test_proteins_look_like_protein_when_most_letters_are_not_acgtn(
    shared: str, other: str
) -> None:
    """A real protein has about a quarter ACGTN letters; here at most half."""
    letters = (shared * 2)[: len(other)] + other
    assert guess_kind(letters) is SequenceKind.PROTEIN


@given(letters=st.text(alphabet=AMINO_ACIDS + "acgt*-X. 0", max_size=2_000))
def test_the_verdict_is_exactly_the_documented_rule(letters: str) -> None:
    counted = [c.upper() for c in letters if c.isascii() and (c.isalpha() or c == "*")][
        :SAMPLE_LETTERS
    ]
    others = sum(1 for c in counted if c not in "ACGTUN")
    protein = bool(counted) and others > PROTEIN_FRACTION * len(counted)
    assert guess_kind(letters) is (
        SequenceKind.PROTEIN if protein else SequenceKind.NUCLEOTIDE
    )
    assert guess_kind(letters.lower()) is guess_kind(letters.upper())


@given(head=dna, tail=st.text(alphabet=PROTEIN_ONLY, max_size=200))
def test_only_the_first_sample_letters_count(head: str, tail: str) -> None:
    sample = (head * (SAMPLE_LETTERS // len(head) + 1))[:SAMPLE_LETTERS]
    assert foreign_fraction(sample + tail) == foreign_fraction(sample)


@given(
    proteins=st.lists(
        st.text(alphabet=AMINO_ACIDS, min_size=30, max_size=200), min_size=1, max_size=5
    )
)
def test_check_kind_reads_a_file_and_names_it_and_the_fitting_command(
    proteins: list[str],
) -> None:
    letters = "".join(proteins)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.faa"
        path.write_text("".join(f">p{i} x\n{p}\n" for i, p in enumerate(proteins)))
        expected = guess_kind(letters)
        check_kind(path, expected, advice="fine")
        other = (
            SequenceKind.NUCLEOTIDE
            if expected is SequenceKind.PROTEIN
            else SequenceKind.PROTEIN
        )
        with pytest.raises(InputError, match=rf"^{path}: looks like {expected} FASTA"):
            check_kind(path, other, advice="use the other command")
