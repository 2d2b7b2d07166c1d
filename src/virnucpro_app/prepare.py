"""The first stage: records -> chunks -> stop-free frames, streamed, with an account.

The API the ``predict`` pipeline builds on::

    records = fasta.read_records(paths)              # checked, in order, streamed
    shard = itertools.islice(records, 0, 10_000)      # any record range
    for batch in prepare_records(shard, chunk_size_bp=500, workers=None):
        batch.frame_ids, batch.frame_nucleotides, batch.frame_proteins  # to embed
        batch.accounts                                 # one per record, in order

``prepare`` itself streams the batches into the three FASTA files and the
per-record report with :func:`write_prepared` (:func:`run_prepare` does both).
Batches hold whole records in input order; chunks and frames keep that order
(chunks in order, then F1, F2, F3, R1, R2, R3), whatever ``workers`` is.
"""

from __future__ import annotations

import itertools
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ckptkit.types import ExitCode
from virnucpro_app.chunking import DEFAULT_CHUNK_SIZE_BP, plan_chunks
from virnucpro_app.errors import PipelineError
from virnucpro_app.fasta import read_records
from virnucpro_app.layout import RunLayout
from virnucpro_app.parallel import available_cores, ordered_map
from virnucpro_app.records import (
    RecordRow,
    RecordStatus,
    RecordsWriter,
    RecordTally,
)
from virnucpro_app.translation import FRAME_NAMES, select_frames

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import IO

    from ckptkit.types import PathLike
    from virnucpro_app.fasta import FastaRecord

#: Bases per batch: big enough that numpy's per-call cost vanishes, small enough
#: that a batch's working arrays (about 10 bytes per base) stay in a core's L2
#: cache; 1 Mbp ran 25-30% faster than 4 Mbp on a 2 MiB-L2 Xeon.
DEFAULT_BATCH_BP = 1_000_000
#: Bases prepared in the calling process before worker processes are started:
#: starting them costs about half a second, the time to prepare ~30 Mbp here.
DEFAULT_POOL_AFTER_BP = 32_000_000
# Plain strings: an enum member's .value is a property call per record.
_PREPARED = str(RecordStatus.PREPARED)
_NO_STOP_FREE_FRAME = str(RecordStatus.NO_STOP_FREE_FRAME)
_SKIPPED = str(RecordStatus.SKIPPED)
#: Records per batch at most (many tiny records cost Python time per record).
MAX_BATCH_RECORDS = 50_000


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """The chunks and kept frames of a run of consecutive records.

    Attributes:
        accounts: One per record, in input order (skipped records included).
        chunk_ids: ``{record_id}_chunk_{k}`` for every chunk, in order.
        chunk_sequences: Each chunk, uppercase.
        frame_ids: Chunk ID + frame name (``F1`` ... ``R3``) of each kept frame.
        frame_nucleotides: The nucleotide sequence paired with each kept frame.
        frame_proteins: The protein of each kept frame.
    """

    accounts: list[RecordRow]
    chunk_ids: list[str]
    chunk_sequences: list[str]
    frame_ids: list[str]
    frame_nucleotides: list[str]
    frame_proteins: list[str]

    @property
    def num_bp(self) -> int:
        """Bases read in this batch's records (skipped ones included)."""
        return sum(account.length_bp for account in self.accounts)


class _Translated(NamedTuple):
    """What a worker sends back for the good records of one batch."""

    chunk_ids: list[str]
    chunk_sequences: list[str]
    frame_ids: list[str]
    frame_nucleotides: list[str]
    frame_proteins: list[str]
    chunks_per_record: list[int]
    frames_per_record: list[int]


def _translate(job: tuple[list[str], list[bytes], int]) -> _Translated:
    """Chunk and translate records given as IDs and uppercase sequences."""
    ids, sequences, chunk_size_bp = job
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    plan = plan_chunks(lengths, chunk_size_bp)
    starts = offsets[plan.record] + plan.start
    buffer = b"".join(sequences)
    text = buffer.decode("latin-1")
    kept = select_frames(buffer, starts, plan.length, text=text)
    # chunk_id() spelled out with precomputed pieces: formatting an int per
    # chunk is a measurable share of the time.
    prefixes = [f"{record_id}_chunk_" for record_id in ids]
    numbers = [
        str(k) for k in range(1, int(np.diff(plan.first_chunk).max(initial=0)) + 1)
    ]
    chunk_ids = [
        prefixes[r] + numbers[k]
        for r, k in zip(plan.record.tolist(), plan.number.tolist(), strict=True)
    ]
    chunk_sequences = [
        text[a:b]
        for a, b in zip(starts.tolist(), (starts + plan.length).tolist(), strict=True)
    ]
    frame_ids = [
        chunk_ids[c] + FRAME_NAMES[f]
        for c, f in zip(kept.chunk.tolist(), kept.frame.tolist(), strict=True)
    ]
    frames = np.bincount(plan.record[kept.chunk], minlength=len(sequences))
    return _Translated(
        chunk_ids,
        chunk_sequences,
        frame_ids,
        kept.nucleotides,
        kept.proteins,
        np.diff(plan.first_chunk).tolist(),
        frames.tolist(),
    )


def _job(
    records: Sequence[FastaRecord], chunk_size_bp: int
) -> tuple[list[str], list[bytes], int]:
    good = [record for record in records if record.problem is None]
    return [r.id for r in good], [r.sequence for r in good], chunk_size_bp


def _assemble(records: Sequence[FastaRecord], translated: _Translated) -> PreparedBatch:
    """Join the worker's output with the accounts of all records, skipped ones too."""
    counts = zip(
        translated.chunks_per_record, translated.frames_per_record, strict=True
    )
    accounts = []
    for record in records:
        if record.problem is not None:
            num_chunks = num_frames = 0
            status, reason = _SKIPPED, str(record.problem)
        else:
            num_chunks, num_frames = next(counts)
            status = _PREPARED if num_frames else _NO_STOP_FREE_FRAME
            reason = ""
        accounts.append(
            RecordRow(
                record.index,
                str(record.path),
                record.id,
                record.length_bp,
                num_chunks,
                num_frames,
                status,
                reason,
                record.message,
            )
        )
    return PreparedBatch(accounts, *translated[:5])


def prepare_batch(
    records: Sequence[FastaRecord], *, chunk_size_bp: int = DEFAULT_CHUNK_SIZE_BP
) -> PreparedBatch:
    """Chunk and translate a few records in this process.

    Args:
        records: Checked records (from :func:`virnucpro_app.fasta.read_records`).
        chunk_size_bp: Chunk size, at least 1.
    """
    return _assemble(records, _translate(_job(records, chunk_size_bp)))


def _batches(
    records: Iterable[FastaRecord], batch_bp: int
) -> Iterator[list[FastaRecord]]:
    batch: list[FastaRecord] = []
    size = 0
    for record in records:
        batch.append(record)
        size += record.length_bp
        if size >= batch_bp or len(batch) >= MAX_BATCH_RECORDS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def prepare_records(
    records: Iterable[FastaRecord],
    *,
    chunk_size_bp: int = DEFAULT_CHUNK_SIZE_BP,
    workers: int | None = 1,
    batch_bp: int = DEFAULT_BATCH_BP,
    pool_after_bp: int = DEFAULT_POOL_AFTER_BP,
) -> Iterator[PreparedBatch]:
    """Stream records into batches of chunks and kept frames, in input order.

    Args:
        records: Checked records, e.g. ``read_records(paths)`` or a slice of it.
        chunk_size_bp: Chunk size, at least 1 (the published models: 300, 500).
        workers: Processes to use; ``None`` means every available core. Worker
            processes are started ("spawn") only once ``pool_after_bp`` bases
            have been prepared here, so small inputs never pay for them; as for
            any multiprocessing code, a calling script then needs an
            ``if __name__ == "__main__":`` guard.
        batch_bp: Bases per batch (a record is never split across batches).
        pool_after_bp: Bases to prepare in this process before starting workers.

    Yields:
        Batches covering the records in order; every record has an account.

    Raises:
        ValueError: If ``chunk_size_bp``, ``workers`` or ``batch_bp`` is below 1.

    Example:
        >>> from virnucpro_app.fasta import read_records
        >>> for batch in prepare_records(read_records(["in.fa"])):  # doctest: +SKIP
        ...     print(batch.frame_ids)
    """
    workers = available_cores() if workers is None else workers
    if chunk_size_bp < 1 or workers < 1 or batch_bp < 1:
        raise ValueError(
            "chunk_size_bp, workers and batch_bp must be at least 1, got "
            f"{chunk_size_bp}, {workers}, {batch_bp}"
        )
    batches = _batches(records, batch_bp)
    done_bp = 0
    for batch in batches:
        yield prepare_batch(batch, chunk_size_bp=chunk_size_bp)
        done_bp += sum(record.length_bp for record in batch)
        if workers > 1 and done_bp >= pool_after_bp:
            break
    following = next(batches, None)
    if following is None:
        return
    jobs = (
        (batch, _job(batch, chunk_size_bp))
        for batch in itertools.chain([following], batches)
    )
    for batch, translated in ordered_map(_translate, jobs, workers=workers):
        yield _assemble(batch, translated)


@dataclass(frozen=True, slots=True)
class PrepareSummary:
    """What ``prepare`` wrote.

    Attributes:
        tally: Records per status.
        num_chunks: Chunks written to ``chunks.fa``.
        num_frames: Kept frames written to the two ORF files.
        num_bp: Bases read.
    """

    layout: RunLayout
    tally: RecordTally
    num_chunks: int
    num_frames: int
    num_bp: int

    @property
    def exit_code(self) -> ExitCode:
        """``PARTIAL`` when records were skipped, else ``OK``."""
        return ExitCode.PARTIAL if self.tally.num_skipped else ExitCode.OK


def write_fasta(handle: IO[str], ids: list[str], sequences: list[str]) -> None:
    """Append records as two lines each: ``>id`` and the sequence."""
    handle.write("".join([f">{i}\n{s}\n" for i, s in zip(ids, sequences, strict=True)]))


def _refuse_existing(layout: RunLayout, *, force: bool) -> None:
    if layout.output_dir.exists() and not layout.output_dir.is_dir():
        raise PipelineError(f"{layout.output_dir}: exists and is not a folder")
    existing = [path for path in layout.prepare_paths if path.exists()]
    if existing and not force:
        raise PipelineError(
            f"{existing[0]} already exists; pass --force to overwrite the prepare "
            f"outputs in {layout.output_dir} (other files there are left alone)"
        )


def write_prepared(
    batches: Iterable[PreparedBatch],
    layout: RunLayout,
    *,
    force: bool = False,
    on_batch: Callable[[PreparedBatch], None] | None = None,
) -> PrepareSummary:
    """Stream batches into ``chunks.fa``, the two ORF files and ``records.tsv``.

    Files are written under temporary names and renamed when every batch is
    in, so a failed run leaves no output that looks complete.

    Args:
        batches: From :func:`prepare_records`.
        layout: Where to write.
        force: Overwrite existing prepare outputs.
        on_batch: Called after each batch is written (progress, warnings).

    Raises:
        PipelineError: If an output exists and ``force`` is not set.
    """
    _refuse_existing(layout, force=force)
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    finals = layout.prepare_paths
    partials = [path.with_name(f".{path.name}.partial") for path in finals]
    tally = RecordTally(Counter())
    num_chunks = num_frames = num_bp = 0
    try:
        with ExitStack() as stack:
            chunks, nucleotides, proteins, report = (
                stack.enter_context(path.open("w", encoding="utf-8", newline=""))
                for path in partials
            )
            writer = RecordsWriter(report)
            for batch in batches:
                write_fasta(chunks, batch.chunk_ids, batch.chunk_sequences)
                write_fasta(nucleotides, batch.frame_ids, batch.frame_nucleotides)
                write_fasta(proteins, batch.frame_ids, batch.frame_proteins)
                writer.write(batch.accounts)
                tally.add(batch.accounts)
                num_chunks += len(batch.chunk_ids)
                num_frames += len(batch.frame_ids)
                num_bp += batch.num_bp
                if on_batch is not None:
                    on_batch(batch)
    except BaseException:
        for path in partials:
            path.unlink(missing_ok=True)
        raise
    for partial, final in zip(partials, finals, strict=True):
        partial.replace(final)
    return PrepareSummary(layout, tally, num_chunks, num_frames, num_bp)


def run_prepare(
    paths: Sequence[PathLike],
    output_dir: PathLike,
    *,
    chunk_size_bp: int = DEFAULT_CHUNK_SIZE_BP,
    workers: int | None = None,
    force: bool = False,
) -> PrepareSummary:
    """Read, check, chunk and translate ``paths``; write the outputs to ``output_dir``.

    :func:`prepare_records` then :func:`write_prepared` (call the two to act
    on each batch as it is written).

    Args:
        paths: FASTA files, plain or compressed.
        output_dir: Folder for ``chunks.fa``, the ORF files and ``records.tsv``.
        chunk_size_bp: Chunk size, at least 1.
        workers: Processes; ``None`` means every available core.
        force: Overwrite existing prepare outputs.

    Returns:
        What was written; ``exit_code`` is ``PARTIAL`` if records were skipped.

    Raises:
        InputError: For input that stops the run (see :mod:`virnucpro_app.fasta`).
        PipelineError: If an output exists and ``force`` is not set.

    Example:
        >>> run_prepare(["contigs.fa.gz"], "out", chunk_size_bp=300)  # doctest: +SKIP
    """
    batches = prepare_records(
        read_records(paths), chunk_size_bp=chunk_size_bp, workers=workers
    )
    return write_prepared(batches, RunLayout(Path(output_dir)), force=force)
