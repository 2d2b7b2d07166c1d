"""The fast prepare path equals a plain implementation of the original's rules."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.chunking import chunk_bounds, plan_chunks
from virnucpro_app.fasta import read_records
from virnucpro_app.prepare import prepare_records
from virnucpro_app.translation import stop_free_frames

# The standard genetic code written out by amino acid, independently of the app.
_CODONS_BY_AMINO_ACID = {
    "F": "TTT TTC", "L": "TTA TTG CTT CTC CTA CTG", "I": "ATT ATC ATA", "M": "ATG",
    "V": "GTT GTC GTA GTG", "S": "TCT TCC TCA TCG AGT AGC", "P": "CCT CCC CCA CCG",
    "T": "ACT ACC ACA ACG", "A": "GCT GCC GCA GCG", "Y": "TAT TAC", "*": "TAA TAG TGA",
    "H": "CAT CAC", "Q": "CAA CAG", "N": "AAT AAC", "K": "AAA AAG", "D": "GAT GAC",
    "E": "GAA GAG", "C": "TGT TGC", "W": "TGG", "R": "CGT CGC CGA CGG AGA AGG",
    "G": "GGT GGC GGA GGG",
}  # fmt: skip
CODE = {
    codon: amino_acid
    for amino_acid, codons in _CODONS_BY_AMINO_ACID.items()
    for codon in codons.split()
}
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


def reference_chunks(length: int, size: int) -> list[tuple[int, int]]:
    """The issue's chunking rule, literally: shift list and running sums."""
    n = math.ceil(length / size)
    overhang = n * size - length
    q = int(overhang / n)
    need = overhang - q * (n - 1)
    shifts = ([q + 1] * need + [q] * max(0, n - 1 - need) + [0])[:n]
    return [
        (k * size - sum(shifts[:k]), min(k * size - sum(shifts[:k]) + size, length))
        for k in range(n)
    ]


def reference_translate(strand: str) -> str:
    return "".join(
        CODE.get(strand[i : i + 3], "") for i in range(0, len(strand) - 2, 3)
    )


def reference_frames(chunk: str) -> list[tuple[str, str, str]]:
    forward = chunk.upper()
    reverse = "".join(COMPLEMENT.get(base, base) for base in reversed(forward))
    frames = []
    for strand, name in ((forward, "F"), (reverse, "R")):
        for offset in range(3):
            protein = reference_translate(strand[offset:])
            if protein and "*" not in protein:
                nucleotide = strand[offset : offset + 3 * len(protein) + 1]
                frames.append((f"{name}{offset + 1}", nucleotide, protein))
    return frames


# Alphabets: plain DNA; stop-poor (more frames survive); with case and ambiguity.
alphabets = st.sampled_from(["ACGT", "ACG", "AC", "ACGTacgtNRYKM", "acgtn"])
sequences = alphabets.flatmap(lambda a: st.text(alphabet=a, min_size=1, max_size=700))
chunk_sizes = st.one_of(
    st.sampled_from([300, 500]), st.integers(min_value=1, max_value=40)
)


@given(length=st.integers(min_value=1, max_value=20_000), size=chunk_sizes)
def test_chunk_bounds_equal_the_rule_and_cover_every_base(
    length: int, size: int
) -> None:
    bounds = chunk_bounds(length, size)
    assert bounds == reference_chunks(length, size)
    assert len(bounds) == math.ceil(length / size)
    covered = np.zeros(length, dtype=bool)
    for start, end in bounds:
        assert 0 <= start < end <= length
        assert end - start <= size
        covered[start:end] = True
    assert covered.all()


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=3000), max_size=20),
    size=chunk_sizes,
)
def test_plan_chunks_equals_chunk_bounds(lengths: list[int], size: int) -> None:
    plan = plan_chunks(np.array(lengths, dtype=np.int64), size)
    flat = [b for length in lengths for b in chunk_bounds(length, size)]
    ends = (plan.start + plan.length).tolist()
    assert list(zip(plan.start.tolist(), ends, strict=True)) == flat


@given(chunk=st.text(alphabet="ACGTacgtNRY-*X\n", max_size=90))
def test_stop_free_frames_equal_the_rule(chunk: str) -> None:
    assert [tuple(f) for f in stop_free_frames(chunk)] == reference_frames(chunk)


@given(
    records=st.lists(sequences, min_size=1, max_size=8),
    size=chunk_sizes,
    line_width=st.integers(min_value=1, max_value=80),
    batch_bp=st.integers(min_value=1, max_value=2000),
)
def test_prepare_equals_the_reference_record_for_record(
    records: list[str], size: int, line_width: int, batch_bp: int
) -> None:
    expected_chunks, expected_frames = [], []
    for index, sequence in enumerate(records):
        for number, (start, end) in enumerate(reference_chunks(len(sequence), size), 1):
            chunk_id = f"r{index}_chunk_{number}"
            expected_chunks.append((chunk_id, sequence[start:end].upper()))
            expected_frames += [
                (chunk_id + name, nucleotide, protein)
                for name, nucleotide, protein in reference_frames(sequence[start:end])
            ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.fa"
        with path.open("w") as handle:
            for index, sequence in enumerate(records):
                lines = [
                    sequence[i : i + line_width]
                    for i in range(0, len(sequence), line_width)
                ]
                handle.write(f">r{index} description\n" + "\n".join(lines) + "\n")
        batches = list(
            prepare_records(read_records([path]), chunk_size_bp=size, batch_bp=batch_bp)
        )
    chunks = [
        c for b in batches for c in zip(b.chunk_ids, b.chunk_sequences, strict=True)
    ]
    frames = [
        f
        for b in batches
        for f in zip(b.frame_ids, b.frame_nucleotides, b.frame_proteins, strict=True)
    ]
    assert chunks == expected_chunks
    assert frames == expected_frames
    accounts = [a for b in batches for a in b.accounts]
    assert [a.index for a in accounts] == list(range(len(records)))
    assert [a.num_chunks for a in accounts] == [
        math.ceil(len(s) / size) for s in records
    ]
