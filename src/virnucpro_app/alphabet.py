"""Is a FASTA file nucleotide or protein? One documented rule, checked up front.

The rule (docs/app/usage.md): take the first :data:`SAMPLE_LETTERS` letters of
the file's sequences (letters and ``*``; gaps, digits and spaces are not
counted); the file looks like **protein** when more than
:data:`PROTEIN_FRACTION` of them are not ``A``, ``C``, ``G``, ``T``, ``U`` or
``N`` (either case), and like **nucleotide** otherwise. DNA, even with IUPAC
ambiguity codes, is almost all ``ACGTN``; a protein holds those five letters
about a quarter of the time (A 8 %, G 7 %, T 5 %, N 4 %, C 1 %), so three
quarters of its letters are others.

``predict`` and ``prepare`` refuse a file that looks like protein, ``embed
dnabert`` one that looks like protein and ``embed esm`` one that looks like
nucleotide: exit 1, one line saying what the file looks like and which command
fits, before anything is written.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from virnucpro_app.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

#: Letters of a file's first records that decide its kind.
SAMPLE_LETTERS = 10_000
#: Above this fraction of letters outside ``ACGTUN`` a file looks like protein.
PROTEIN_FRACTION = 0.25
NUCLEOTIDE_LETTERS = frozenset("ACGTUN")


class SequenceKind(StrEnum):
    """What a FASTA file holds."""

    NUCLEOTIDE = "nucleotide"
    PROTEIN = "protein"


def _counted(letters: str) -> list[str]:
    """The letters the rule counts (letters and ``*``, uppercased), the sample."""
    kept = [c for c in letters.upper() if c.isascii() and (c.isalpha() or c == "*")]
    return kept[:SAMPLE_LETTERS]


def foreign_fraction(letters: str) -> float:
    """Fraction of the counted letters that are not ``A C G T U N`` (0 if none).

    Example:
        >>> foreign_fraction("acgtn-ACGTN"), foreign_fraction("MKPG")
        (0.0, 0.75)
    """
    counted = _counted(letters)
    if not counted:
        return 0.0
    return sum(1 for c in counted if c not in NUCLEOTIDE_LETTERS) / len(counted)


def guess_kind(letters: str) -> SequenceKind:
    """The kind of sequence these letters (a file's first ones) look like.

    Returns:
        ``PROTEIN`` when more than :data:`PROTEIN_FRACTION` of the counted
        letters are not ``ACGTUN``, else ``NUCLEOTIDE``.

    Example:
        >>> guess_kind("ATGAAACCCRYN"), guess_kind("MKTAYIAKQRQISFVKSHFSRQ")
        (<SequenceKind.NUCLEOTIDE: 'nucleotide'>, <SequenceKind.PROTEIN: 'protein'>)
    """
    fraction = foreign_fraction(letters)
    return (
        SequenceKind.PROTEIN if fraction > PROTEIN_FRACTION else SequenceKind.NUCLEOTIDE
    )


def sample_letters(path: Path) -> str:
    """The first :data:`SAMPLE_LETTERS` counted letters of a FASTA file's sequences.

    Raises:
        dnaio.exceptions.FileFormatError: Not FASTA (callers check that first).
    """
    import dnaio

    parts: list[str] = []
    total = 0
    with dnaio.open(path, fileformat="fasta") as reader:
        for record in reader:
            counted = _counted(record.sequence)
            parts.append("".join(counted))
            total += len(counted)
            if total >= SAMPLE_LETTERS:
                break
    return "".join(parts)[:SAMPLE_LETTERS]


def check_kind(path: Path, expected: SequenceKind, *, advice: str) -> None:
    """Refuse a FASTA file that looks like the other kind of sequence.

    Args:
        path: The file (already known to be readable FASTA).
        expected: What the command takes.
        advice: Which command or flag fits the file instead.

    Raises:
        InputError: The file looks like the other kind.
    """
    letters = sample_letters(path)
    kind = guess_kind(letters)
    if kind is expected:
        return
    fraction = foreign_fraction(letters)
    share = fraction if kind is SequenceKind.PROTEIN else 1 - fraction
    which = "not" if kind is SequenceKind.PROTEIN else "are"
    raise InputError(
        f"{path}: looks like {kind} FASTA ({share:.0%} of its first "
        f"{len(letters):,} letters {which} A, C, G, T, U or N); {advice}"
    )


#: What predict and prepare say about a protein file.
CONTIGS_ADVICE = (
    "predict and prepare take nucleotide contigs (to embed proteins, use "
    "`virnucpro-app embed esm`)"
)


def check_inputs(
    paths: Sequence[Path], expected: SequenceKind, *, advice: str = CONTIGS_ADVICE
) -> None:
    """Check FASTA inputs before anything is written: present, FASTA, kind.

    Every missing file is named at once; then each file's first record is read
    (a file that is not FASTA or holds no record stops here) and its first
    letters must look like ``expected``.

    Raises:
        InputError: The first problem found (all missing files together).
    """
    from virnucpro_app.fasta import read_records

    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        # Same wording as the FASTA reader's, so one missing file reads alike
        # whichever check meets it first.
        raise InputError(
            f"{', '.join(missing)}: no such file{'s' if len(missing) > 1 else ''}; "
            "check the input paths"
        )
    for path in paths:
        # Not FASTA, no ID, an empty file: the reader's own errors.
        next(iter(read_records([path])), None)
        check_kind(path, expected, advice=advice)
