"""Six-frame translation and stop-free frame selection, as the original does them.

Rules (docs/app/algorithm.md): standard genetic code, stops ``TAA TAG TGA`` give
``*``; frame ``f`` reads codons at ``f, f+3, ...`` while a whole codon fits; the
reverse strand is the complement (A<->T, C<->G, any other letter unchanged)
reversed; a codon that is not one of the 64 ACGT codons is dropped without a
placeholder; a frame is kept when its protein is not empty and has no ``*``; the
nucleotide sequence paired with a kept frame of protein length ``p`` is the
strand from ``f``, ``3p + 1`` bases long, clipped at the end.

How it is fast: the whole batch of chunks lies in one byte buffer. Each base
becomes a code 0-3 (ACGT) or 4 (anything else) with ``bytes.translate``; every
position gets the codon index ``25a + 5b + c`` (base 5, so 125 values and an
"ambiguous" class of its own) with three numpy operations; one more table gives
per codon a bit for "stop on the forward strand", "stop on the reverse strand"
(the reverse-complement codon) and "ambiguous". A frame's codons are every
third position, so for each residue class mod 3 the flags of a frame form one
contiguous run, and ``bitwise_or.reduceat`` answers "any stop, any ambiguous
codon" for all frames of all chunks in one call. Only kept frames are turned
into strings, by slicing residue-class protein strings built once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Stop codons of the standard code; they translate to :data:`STOP`.
STOP_CODONS = ("TAA", "TAG", "TGA")
#: The protein letter of a stop codon.
STOP = "*"
#: Frame names: forward frames 0-2 are F1-F3, reverse frames 0-2 are R1-R3.
FRAME_NAMES = ("F1", "F2", "F3", "R1", "R2", "R3")

_NCBI_ORDER = "TCAG"
_NCBI_TABLE_1 = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
#: The standard genetic code (NCBI table 1): 64 uppercase codons -> one letter.
STANDARD_CODE: dict[str, str] = {
    a + b + c: _NCBI_TABLE_1[16 * i + 4 * j + k]
    for i, a in enumerate(_NCBI_ORDER)
    for j, b in enumerate(_NCBI_ORDER)
    for k, c in enumerate(_NCBI_ORDER)
}

# The original's complement table: only ACGT change, every other letter stays.
_COMPLEMENT = bytes.maketrans(b"ACGT", b"TGCA")
# Kept frames are cut out, joined with a separator, translated at once and split
# back; codon indices never reach 255, and batch sequences hold no newline.
_SEPARATOR = "\n"
_SEPARATOR_CODE = 255
_BASES = "ACGT"
_AMBIGUOUS = 4
_STOP_FORWARD = 1
_STOP_REVERSE = 2
_HAS_AMBIGUOUS = 4
_STOP_BIT_BY_FRAME = np.array([_STOP_FORWARD] * 3 + [_STOP_REVERSE] * 3, dtype=np.uint8)


def _build_tables() -> tuple[bytes, bytes, bytes, bytes]:
    """Byte -> base code; codon index -> forward letter, reverse letter, flags."""
    base_code = bytearray([_AMBIGUOUS]) * 256
    for code, base in enumerate(_BASES):
        base_code[ord(base)] = code
    forward, reverse, flags = bytearray(256), bytearray(256), bytearray(256)
    for index in range(125):
        codes = (index // 25, index // 5 % 5, index % 5)
        if _AMBIGUOUS in codes:
            flags[index] = _HAS_AMBIGUOUS  # letters stay 0: dropped later
            continue
        codon = "".join(_BASES[code] for code in codes)
        forward_aa = STANDARD_CODE[codon]
        reverse_aa = STANDARD_CODE[reverse_complement(codon)]
        forward[index], reverse[index] = ord(forward_aa), ord(reverse_aa)
        flags[index] = (_STOP_FORWARD if forward_aa == STOP else 0) | (
            _STOP_REVERSE if reverse_aa == STOP else 0
        )
    forward[_SEPARATOR_CODE] = reverse[_SEPARATOR_CODE] = ord(_SEPARATOR)
    return bytes(base_code), bytes(forward), bytes(reverse), bytes(flags)


def reverse_complement(sequence: str) -> str:
    """The original's reverse strand: A<->T, C<->G, other letters kept, reversed.

    Args:
        sequence: Uppercase nucleotides.

    Returns:
        The reverse strand (``"ACGN" -> "NCGT"``).
    """
    return sequence.translate(str.maketrans("ACGT", "TGCA"))[::-1]


_BASE_CODE, _FORWARD_AA, _REVERSE_AA, _FLAGS = _build_tables()


class Frame(NamedTuple):
    """One kept frame of one chunk.

    Attributes:
        name: ``F1`` ... ``R3``.
        nucleotide: The strand from the frame offset, ``3p + 1`` bases, clipped.
        protein: Its stop-free protein, ambiguous codons left out.
    """

    name: str
    nucleotide: str
    protein: str


@dataclass(frozen=True, slots=True)
class KeptFrames:
    """The stop-free frames of a batch of chunks, chunk by chunk, F1 ... R3.

    Attributes:
        chunk: Position of each kept frame's chunk in the ``starts`` given.
        frame: Index of each kept frame into :data:`FRAME_NAMES`.
        nucleotides: The nucleotide sequence paired with each kept frame.
        proteins: The protein of each kept frame.
    """

    chunk: NDArray[np.int64]
    frame: NDArray[np.int64]
    nucleotides: list[str]
    proteins: list[str]


def select_frames(
    buffer: bytes,
    starts: NDArray[np.int64],
    lengths: NDArray[np.int64],
    *,
    text: str | None = None,
) -> KeptFrames:
    """Translate the six frames of each chunk and keep the stop-free ones.

    Args:
        buffer: Uppercase sequence bytes holding every chunk.
        starts: Where each chunk starts in ``buffer``.
        lengths: Each chunk's length (it may run up to the end of ``buffer``).
        text: ``buffer`` decoded as Latin-1, if the caller has it already.

    Returns:
        The kept frames, ordered by chunk and then F1, F2, F3, R1, R2, R3.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(buffer) < 3 or starts.size == 0:  # noqa: PLR2004 - one codon
        empty = np.zeros(0, dtype=np.int64)
        return KeptFrames(chunk=empty, frame=empty, nucleotides=[], proteins=[])
    codons = _ResidueMajorCodons.from_buffer(buffer)
    offset = np.arange(3, dtype=np.int64)
    num_codons = np.maximum(0, (lengths[:, None] - offset) // 3)
    forward_first = starts[:, None] + offset
    # Lowest buffer position among a reverse frame's codons: its last codon.
    reverse_first = starts[:, None] + lengths[:, None] - offset - 3 * num_codons
    first = np.concatenate([forward_first, reverse_first], axis=1)
    count = np.concatenate([num_codons, num_codons], axis=1)
    seen = codons.flags_per_frame(first, count)
    keep = ((seen & _STOP_BIT_BY_FRAME) == 0) & (count > 0)
    chunk, frame = np.nonzero(keep)
    cand = _Candidates(
        chunk=chunk,
        frame=frame,
        first=first[chunk, frame],
        count=count[chunk, frame],
        ambiguous=(seen[chunk, frame] & _HAS_AMBIGUOUS) != 0,
    )
    proteins = codons.proteins(cand)
    protein_length = np.fromiter(
        map(len, proteins), dtype=np.int64, count=len(proteins)
    )
    kept = protein_length > 0
    if not kept.all():  # every codon of these frames was ambiguous
        proteins = [p for p in proteins if p]
        cand, protein_length = cand.subset(kept), protein_length[kept]
    chunks = _Chunks(
        buffer, buffer.decode("latin-1") if text is None else text, starts, lengths
    )
    nucleotides = _nucleotides(chunks, cand, protein_length)
    return KeptFrames(
        chunk=cand.chunk, frame=cand.frame, nucleotides=nucleotides, proteins=proteins
    )


@dataclass(frozen=True, slots=True)
class _Chunks:
    """The batch: its bytes (and the same as text), each chunk's start and length."""

    buffer: bytes
    text: str
    starts: NDArray[np.int64]
    lengths: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Candidates:
    """Stop-free frames: ``count`` codons, the lowest at buffer position ``first``."""

    chunk: NDArray[np.int64]
    frame: NDArray[np.int64]
    first: NDArray[np.int64]
    count: NDArray[np.int64]
    ambiguous: NDArray[np.bool_]

    def subset(self, mask: NDArray[np.bool_]) -> _Candidates:
        return _Candidates(*(getattr(self, f.name)[mask] for f in fields(self)))


@dataclass(frozen=True, slots=True)
class _ResidueMajorCodons:
    """Codon indices of every buffer position, regrouped by position mod 3.

    Position ``3p + r`` lies at ``r * run_length + p``, so the codons of one
    frame (every third position) are one contiguous run.
    """

    codon_bytes: bytes
    run_length: int

    @classmethod
    def from_buffer(cls, buffer: bytes) -> _ResidueMajorCodons:
        codes = np.frombuffer(buffer.translate(_BASE_CODE), dtype=np.uint8)
        num_positions = codes.size - 2
        # One spare slot per residue row, so that a run may end at its row's
        # last codon and still be a valid reduceat bound.
        run_length = -(-num_positions // 3) + 1
        # Slots past the last codon hold an ambiguous index; no frame reads them.
        index = np.empty(3 * run_length, dtype=np.uint8)
        index[num_positions:] = 124
        head, scratch = index[:num_positions], np.empty(num_positions, np.uint8)
        np.multiply(codes[:-2], np.uint8(25), out=head)
        np.add(head, np.multiply(codes[1:-1], np.uint8(5), out=scratch), out=head)
        np.add(head, codes[2:], out=head)
        by_residue = index.reshape(run_length, 3).T.tobytes()
        return cls(codon_bytes=by_residue, run_length=run_length)

    def run_start(self, first: NDArray[np.int64]) -> NDArray[np.int64]:
        return (first % 3) * self.run_length + first // 3

    def flags_per_frame(
        self, first: NDArray[np.int64], count: NDArray[np.int64]
    ) -> NDArray[np.uint8]:
        """OR of the codon flags of each frame, all frames in one reduceat."""
        seen = np.zeros(first.shape, dtype=np.uint8)
        selected = count > 0
        if not selected.any():
            return seen
        flags = np.frombuffer(self.codon_bytes.translate(_FLAGS), dtype=np.uint8)
        first, count = first[selected], count[selected]
        # reduceat also reduces the gap between one run's end and the next
        # run's start: visit runs residue by residue (chunk order within one),
        # so those gaps stay short instead of spanning the whole buffer.
        order = np.argsort((first % 3).astype(np.int8), kind="stable")
        run_start = self.run_start(first[order])
        bounds = np.empty(2 * run_start.size, dtype=np.intp)
        bounds[0::2] = run_start
        bounds[1::2] = run_start + count[order]
        found = np.empty(run_start.size, dtype=np.uint8)
        found[order] = np.bitwise_or.reduceat(flags, bounds)[0::2]
        seen[selected] = found
        return seen

    def proteins(self, cand: _Candidates) -> list[str]:
        """Each candidate's protein, translated from its own run of codons."""
        # Kept frames hold a small share of all codons: translating just their
        # runs beats translating the whole batch twice.
        run_start = self.run_start(cand.first)
        run_end = run_start + cand.count
        is_forward = cand.frame < 3  # noqa: PLR2004 - F1-F3
        reverse = ~is_forward
        forward = _FORWARD_PROTEINS.cut(
            self.codon_bytes, run_start[is_forward], run_end[is_forward]
        )
        backward = _REVERSE_PROTEINS.cut(
            self.codon_bytes, run_start[reverse], run_end[reverse]
        )
        proteins = _interleave(is_forward, forward, backward)
        for i in np.flatnonzero(cand.ambiguous).tolist():
            proteins[i] = proteins[i].replace("\0", "")  # no letter for these
        return proteins


@dataclass(frozen=True, slots=True)
class _Pieces:
    """How pieces of a byte string are cut out and mapped, all in one pass.

    One join, ``translate``, ``decode`` and ``split`` serve all pieces, instead
    of one call of each per piece; ``table`` must map ``separator``, and
    nothing else, to :data:`_SEPARATOR`.
    """

    table: bytes
    separator: bytes
    reverse: bool = False

    def cut(
        self, source: bytes, lo: NDArray[np.int64], hi: NDArray[np.int64]
    ) -> list[str]:
        """Each ``source[lo:hi]``, mapped through ``table`` (and reversed)."""
        if lo.size == 0:
            return []
        joined = self.separator.join(
            [source[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        ).translate(self.table)
        if not self.reverse:
            return joined.decode("latin-1").split(_SEPARATOR)
        # Reversing the whole string reverses each piece and the order of pieces.
        return joined[::-1].decode("latin-1").split(_SEPARATOR)[::-1]


_FORWARD_PROTEINS = _Pieces(_FORWARD_AA, bytes([_SEPARATOR_CODE]))
# A reverse frame reads its codons from the highest position down.
_REVERSE_PROTEINS = _Pieces(_REVERSE_AA, bytes([_SEPARATOR_CODE]), reverse=True)
_REVERSE_STRANDS = _Pieces(_COMPLEMENT, _SEPARATOR.encode(), reverse=True)


def _interleave(
    is_forward: NDArray[np.bool_], forward: list[str], backward: list[str]
) -> list[str]:
    """Merge forward-frame and reverse-frame strings back into frame order."""
    merged = np.empty(is_forward.size, dtype=object)
    for mask, strings in ((is_forward, forward), (~is_forward, backward)):
        column = np.empty(len(strings), dtype=object)
        column[:] = strings
        merged[mask] = column
    result: list[str] = merged.tolist()
    return result


def _nucleotides(
    chunks: _Chunks, cand: _Candidates, protein_length: NDArray[np.int64]
) -> list[str]:
    """The strand from the frame offset, ``3p + 1`` bases, clipped at the end."""
    buffer, text = chunks.buffer, chunks.text
    start, length = chunks.starts[cand.chunk], chunks.lengths[cand.chunk]
    is_forward = cand.frame < 3  # noqa: PLR2004 - F1-F3
    reverse = ~is_forward
    offset = cand.frame % 3
    span = 3 * protein_length + 1
    # Reverse: the same slice of the reverse strand is the reverse complement
    # of seq[L - f - 3p - 1 : L - f].
    lo = np.where(
        is_forward, start + offset, start + np.maximum(0, length - offset - span)
    )
    hi = np.where(
        is_forward, start + np.minimum(offset + span, length), start + length - offset
    )
    forward = [
        text[a:b]
        for a, b in zip(lo[is_forward].tolist(), hi[is_forward].tolist(), strict=True)
    ]
    if _SEPARATOR.encode() in buffer:  # not from read_records; keep it exact
        backward = [
            buffer[a:b].translate(_COMPLEMENT)[::-1].decode("latin-1")
            for a, b in zip(lo[reverse].tolist(), hi[reverse].tolist(), strict=True)
        ]
    else:
        backward = _REVERSE_STRANDS.cut(buffer, lo[reverse], hi[reverse])
    return _interleave(is_forward, forward, backward)


def stop_free_frames(sequence: str) -> list[Frame]:
    """The kept frames of one chunk (a convenience over :func:`select_frames`).

    Args:
        sequence: One chunk; uppercased here, as the original does.

    Returns:
        Its stop-free, non-empty frames in the order F1, F2, F3, R1, R2, R3.

    Raises:
        UnicodeEncodeError: If ``sequence`` holds a non-ASCII character.

    Example:
        >>> stop_free_frames("atgaaacccggg")[0]
        Frame(name='F1', nucleotide='ATGAAACCCGGG', protein='MKPG')
    """
    buffer = sequence.upper().encode("ascii")
    kept = select_frames(
        buffer, np.zeros(1, dtype=np.int64), np.full(1, len(buffer), dtype=np.int64)
    )
    return [
        Frame(FRAME_NAMES[f], nucleotide, protein)
        for f, nucleotide, protein in zip(
            kept.frame.tolist(), kept.nucleotides, kept.proteins, strict=True
        )
    ]
