"""Chunking + six-frame translation: per-codon Python (as the original) vs virnucpro_app.

Generates coding-rich contigs of 1-20 kbp (genes of random sense codons on both
strands, short random gaps) totalling --total-mbp (default 20), then in one run
times, from the same in-memory (ID, sequence) records:

- two baselines, per-codon Python implementations of the original's rules that
  produce lists of (ID, sequence) and (ID, nucleotide, protein) tuples: "plain",
  the straightforward way the original is written (a loop over codons, a dict
  lookup and ``+=`` per codon, a per-base complement), and "tuned" (a generator
  with ``dict.get`` and one ``join`` per frame, ``str.translate`` for the
  complement), about 1.3x faster than "plain";
- fast, 1 core: ``fasta.normalize_sequence`` (uppercase + check) and
  ``prepare.prepare_records(workers=1)``, producing its batches (lists of IDs and
  sequences);
- fast, all cores: the same with ``workers`` = every available core, every batch
  sent to the worker pool (its start-up included);
- end to end: ``prepare.run_prepare`` from a FASTA file on disk (dnaio parsing,
  checks, chunking, translation, writing the four outputs), 1 core, and all cores
  with the default rule (workers start after 32 Mbp, so not for 20 Mbp).

The outputs of baseline and fast are compared; the script fails if they differ.
Fast timings are the best of --repeats runs; each baseline runs once (they are
slow). Ratios are printed against both baselines, by wall clock and by CPU time.

    .venv/bin/python bench/bench_prepare.py [--total-mbp 20] [--chunk-size 500]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from virnucpro_app.fasta import FastaRecord, normalize_sequence
from virnucpro_app.parallel import available_cores
from virnucpro_app.prepare import PreparedBatch, prepare_records, run_prepare

if TYPE_CHECKING:
    from collections.abc import Callable

_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODE = {
    a + b + c: _AMINO[16 * i + 4 * j + k]
    for i, a in enumerate(_BASES)
    for j, b in enumerate(_BASES)
    for k, c in enumerate(_BASES)
}
COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


# --- baselines: per-codon Python -------------------------------------------------
COMPLEMENT_BASE = {"A": "T", "C": "G", "G": "C", "T": "A"}


def baseline_chunks(record_id: str, sequence: str, size: int) -> list[tuple[str, str]]:
    n = math.ceil(len(sequence) / size)
    overhang = n * size - len(sequence)
    q = int(overhang / n)
    need = overhang - q * (n - 1)
    shifts = [q + 1] * need + [q] * max(0, n - 1 - need) + [0]
    chunks = []
    for k in range(n):
        start = k * size - sum(shifts[:k])
        chunks.append((f"{record_id}_chunk_{k + 1}", sequence[start : start + size]))
    return chunks


def plain_translate(strand: str) -> str:
    """Codon by codon, the straightforward way (and the original's)."""
    protein = ""
    for i in range(0, len(strand) - 2, 3):
        codon = strand[i : i + 3]
        if codon in CODE:
            protein += CODE[codon]
    return protein


def plain_reverse(strand: str) -> str:
    return "".join(COMPLEMENT_BASE.get(base, base) for base in reversed(strand))


def tuned_translate(strand: str) -> str:
    """Still per codon, but with a generator, ``dict.get`` and one ``join``."""
    return "".join(
        CODE.get(strand[i : i + 3], "") for i in range(0, len(strand) - 2, 3)
    )


def tuned_reverse(strand: str) -> str:
    return strand.translate(COMPLEMENT)[::-1]


def baseline(
    records: list[tuple[str, str]],
    size: int,
    translate: Callable[[str], str],
    reverse: Callable[[str], str],
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    chunks, frames = [], []
    for record_id, sequence in records:
        for chunk_id, chunk in baseline_chunks(record_id, sequence, size):
            forward = chunk.upper()
            chunks.append((chunk_id, forward))
            for strand, name in ((forward, "F"), (reverse(forward), "R")):
                for offset in range(3):
                    protein = translate(strand[offset:])
                    if protein and "*" not in protein:
                        nucleotide = strand[offset : offset + 3 * len(protein) + 1]
                        frames.append(
                            (f"{chunk_id}{name}{offset + 1}", nucleotide, protein)
                        )
    return chunks, frames


# --- fast -------------------------------------------------------------------------
def fast(
    records: list[tuple[str, str]], size: int, workers: int
) -> list[PreparedBatch]:
    """Check and uppercase each record, then chunk and translate; with
    ``workers > 1`` the pool takes every batch (``pool_after_bp=0``)."""
    checked, source = [], Path("generated")
    for index, (record_id, sequence) in enumerate(records):
        upper = normalize_sequence(sequence.encode("ascii"))
        if upper is None:
            raise SystemExit(f"generated record {record_id} is not IUPAC")
        checked.append(
            FastaRecord(index, source, index + 1, record_id, upper, len(upper))
        )
    return list(
        prepare_records(checked, chunk_size_bp=size, workers=workers, pool_after_bp=0)
    )


def flatten(
    batches: list[PreparedBatch],
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The baseline's output shape, for comparing (not timed)."""
    chunks: list[tuple[str, str]] = []
    frames: list[tuple[str, str, str]] = []
    for batch in batches:
        chunks += zip(batch.chunk_ids, batch.chunk_sequences, strict=True)
        frames += zip(
            batch.frame_ids, batch.frame_nucleotides, batch.frame_proteins, strict=True
        )
    return chunks, frames


# --- input ------------------------------------------------------------------------
def generate(total_bp: int, seed: int) -> list[tuple[str, str]]:
    """Contigs of 1-20 kbp made of genes (ATG, 100-1000 sense codons, a stop) on
    both strands, separated by 10-200 random bases."""
    rng = np.random.default_rng(seed)
    sense = np.array([c for c, aa in CODE.items() if aa != "*"])
    stops = np.array(["TAA", "TAG", "TGA"])
    records, made = [], 0
    while made < total_bp:
        length = int(rng.integers(1000, 20_001))
        parts, size = [], 0
        while size < length:
            gene = "ATG" + "".join(rng.choice(sense, int(rng.integers(100, 1001))))
            gene += str(rng.choice(stops))
            if rng.random() < 0.5:
                gene = gene.translate(COMPLEMENT)[::-1]
            gap = "".join(rng.choice(list("ACGT"), int(rng.integers(10, 201))))
            parts += [gene, gap]
            size += len(gene) + len(gap)
        records.append((f"contig{len(records) + 1}", "".join(parts)[:length]))
        made += length
    return records


def _best(func, repeats: int) -> tuple[float, float]:
    """Least wall-clock and least CPU seconds of this process over ``repeats``."""
    wall = cpu = math.inf
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        func()
        wall = min(wall, time.perf_counter() - wall_start)
        cpu = min(cpu, time.process_time() - cpu_start)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mbp", type=float, default=20.0)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cores = available_cores()
    records = generate(int(args.total_mbp * 1e6), args.seed)
    mbp = sum(len(s) for _, s in records) / 1e6
    print(
        f"input: {len(records)} contigs, {mbp:.1f} Mbp, chunk size {args.chunk_size}; "
        f"{cores} cores available"
    )
    print("single core: Mbp/s by wall clock, and by CPU time of the process")

    expected: list[tuple[list[tuple[str, str]], list[tuple[str, str, str]]]] = []
    baselines = {}
    for label, translate, reverse in (
        ("baseline, plain per-codon Python", plain_translate, plain_reverse),
        ("baseline, tuned per-codon Python", tuned_translate, tuned_reverse),
    ):
        baselines[label] = _best(
            lambda t=translate, r=reverse: expected.append(
                baseline(records, args.chunk_size, t, r)
            ),
            1,
        )
        wall, cpu = baselines[label]
        print(
            f"  {label + ':':34s} {mbp / wall:8.2f} Mbp/s wall "
            f"{mbp / cpu:8.2f} Mbp/s CPU ({wall:.1f} s)"
        )
    if expected[0] != expected[1]:
        raise SystemExit("MISMATCH between the two baselines")
    chunks, frames = expected[0]
    print(f"    {len(chunks)} chunks, {len(frames)} kept frames")
    if flatten(fast(records, args.chunk_size, 1)) != expected[0]:
        raise SystemExit("MISMATCH: fast output differs from the baseline")
    expected.clear()
    wall, cpu = _best(lambda: fast(records, args.chunk_size, 1), args.repeats)
    print(
        f"  {'fast (virnucpro_app):':34s} {mbp / wall:8.2f} Mbp/s wall "
        f"{mbp / cpu:8.2f} Mbp/s CPU ({wall:.2f} s); outputs identical"
    )
    for label, (base_wall, base_cpu) in baselines.items():
        print(
            f"  fast / {label.split(', ')[1] + ':':27s} {base_wall / wall:8.1f}x wall "
            f"{base_cpu / cpu:8.1f}x CPU"
        )
    base_wall = baselines["baseline, plain per-codon Python"][0]
    wall, _ = _best(lambda: fast(records, args.chunk_size, cores), args.repeats)
    print(
        f"all {cores} cores, every batch to the worker pool (start-up included): "
        f"{mbp / wall:.2f} Mbp/s wall ({wall:.2f} s) = {base_wall / wall:.1f}x plain baseline"
    )

    with tempfile.TemporaryDirectory() as folder:
        fasta = Path(folder) / "contigs.fa"
        with fasta.open("w") as handle:
            for record_id, sequence in records:
                lines = "\n".join(
                    sequence[i : i + 60] for i in range(0, len(sequence), 60)
                )
                handle.write(f">{record_id}\n{lines}\n")
        for workers in (1, cores):
            seconds, _ = _best(
                lambda w=workers: run_prepare(
                    [fasta], Path(folder) / "out", chunk_size_bp=args.chunk_size,
                    workers=w, force=True,
                ),
                args.repeats,
            )  # fmt: skip
            print(
                f"end to end (FASTA file -> 4 outputs), workers={workers}: "
                f"{mbp / seconds:8.2f} Mbp/s wall ({seconds:.2f} s)"
            )


if __name__ == "__main__":
    main()
