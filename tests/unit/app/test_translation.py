"""Six-frame translation: code, frame names, dropped codons, the 3p + 1 slice."""

from __future__ import annotations

import numpy as np

from virnucpro_app.translation import (
    FRAME_NAMES,
    STANDARD_CODE,
    STOP_CODONS,
    Frame,
    reverse_complement,
    select_frames,
    stop_free_frames,
)


def test_standard_code_has_64_codons_and_three_stops() -> None:
    assert len(STANDARD_CODE) == 64
    assert sorted(c for c, aa in STANDARD_CODE.items() if aa == "*") == sorted(
        STOP_CODONS
    )
    assert STANDARD_CODE["ATG"] == "M"
    assert STANDARD_CODE["TGG"] == "W"


def test_frame_names_are_f1_to_r3() -> None:
    assert FRAME_NAMES == ("F1", "F2", "F3", "R1", "R2", "R3")


def test_reverse_complement_changes_only_acgt() -> None:
    assert reverse_complement("ACGTRYN") == "NYRACGT"


def test_stop_free_frames_names_and_order() -> None:
    # AAACCCGGGTT: reverse strand AACCCGGGTTT.
    frames = stop_free_frames("AAACCCGGGTT")
    assert [f.name for f in frames] == ["F1", "F2", "F3", "R1", "R2", "R3"]
    assert frames[0] == Frame("F1", "AAACCCGGGT", "KPG")
    assert frames[3] == Frame("R1", "AACCCGGGTT", "NPG")
    # R2 reads ACC CGG GTT from offset 1 of the reverse strand.
    assert frames[4] == Frame("R2", "ACCCGGGTTT", "TRV")


def test_stop_free_frames_drops_frames_with_a_stop() -> None:
    frames = stop_free_frames("ATGTAAATG")
    assert "F1" not in [f.name for f in frames]


def test_stop_free_frames_drops_empty_frames() -> None:
    assert [f.name for f in stop_free_frames("ATGG")] == ["F1", "F2", "R1", "R2"]
    assert stop_free_frames("AT") == []


def test_stop_free_frames_uppercases() -> None:
    assert stop_free_frames("atgaaacccggg")[0] == Frame("F1", "ATGAAACCCGGG", "MKPG")


def test_ambiguous_codons_are_dropped_without_placeholder() -> None:
    frames = {f.name: f for f in stop_free_frames("ATGNNNAAA")}
    assert frames["F1"].protein == "MK"
    # p = 2, so the nucleotide is the first 7 bases: a prefix, not re-aligned.
    assert frames["F1"].nucleotide == "ATGNNNA"


def test_iupac_letters_other_than_n_drop_their_codon_too() -> None:
    frames = {f.name: f for f in stop_free_frames("ATGRAAAAA")}
    # ATG RAA AAA -> M, dropped, K
    assert frames["F1"].protein == "MK"


def test_frame_whose_codons_are_all_ambiguous_is_not_kept() -> None:
    assert stop_free_frames("NNNNNN") == []


def test_nucleotide_is_3p_plus_1_clipped_on_both_strands_300() -> None:
    frames = {f.name: f for f in stop_free_frames("A" * 300)}
    lengths = {name: len(f.nucleotide) for name, f in frames.items()}
    assert lengths == {"F1": 300, "F2": 298, "F3": 298, "R1": 300, "R2": 298, "R3": 298}
    assert {name: len(f.protein) for name, f in frames.items()} == {
        "F1": 100, "F2": 99, "F3": 99, "R1": 100, "R2": 99, "R3": 99,
    }  # fmt: skip


def test_nucleotide_is_3p_plus_1_clipped_on_both_strands_500() -> None:
    frames = {f.name: f for f in stop_free_frames("C" * 500)}
    lengths = {name: len(f.nucleotide) for name, f in frames.items()}
    assert lengths == {"F1": 499, "F2": 499, "F3": 498, "R1": 499, "R2": 499, "R3": 498}


def test_reverse_nucleotide_is_a_slice_of_the_reverse_strand() -> None:
    sequence = "GCAGCTGCCAAAGCTTG"  # 17 bp, no stop in R2 or R3
    strand = reverse_complement(sequence)
    for frame in stop_free_frames(sequence):
        offset = int(frame.name[1]) - 1
        source = sequence if frame.name[0] == "F" else strand
        assert frame.nucleotide == source[offset : offset + 3 * len(frame.protein) + 1]


def test_select_frames_orders_by_chunk_then_frame() -> None:
    buffer = b"AAACCCGGGTTAAACCCGGGTT"
    kept = select_frames(
        buffer, np.array([11, 0], dtype=np.int64), np.array([11, 11], dtype=np.int64)
    )
    assert kept.chunk.tolist() == [0] * 6 + [1] * 6
    assert kept.frame.tolist() == [0, 1, 2, 3, 4, 5] * 2
    assert kept.proteins[:6] == kept.proteins[6:]


def test_select_frames_with_no_chunks_is_empty() -> None:
    kept = select_frames(b"ACGT", np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert kept.proteins == []
    assert kept.nucleotides == []


def test_reverse_frames_of_a_chunk_holding_a_newline_stay_exact() -> None:
    """A newline cannot come from read_records, but select_frames stays exact."""
    frames = {f.name: f for f in stop_free_frames("GGG\nCCC")}
    assert frames["F1"] == Frame("F1", "GGG\n", "G")
    assert frames["R1"] == Frame("R1", "GGG\n", "G")
