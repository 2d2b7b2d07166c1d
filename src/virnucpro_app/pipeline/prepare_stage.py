"""The prepare stage of predict: records -> chunks -> kept frames -> shards.

Streams the input once, cuts each record into chunks and keeps its stop-free
frames (``chunking``, ``translation``), and groups the frames into shards of
``shard_size`` frames, each saved as a checkpoint (``pipeline.shards``). The
per-record account and the shard count are saved last, as ``prepared.ckpt``;
a resumed run whose ``prepared.ckpt`` and shard files are sound skips this stage
(it is fast; a half-done one is simply redone, giving the same shards).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from virnucpro_app.pipeline.outputs import RecordRow
from virnucpro_app.pipeline.shards import (
    FRAMES_SCHEMA,
    ShardFrames,
    frames_from_state,
    frames_state,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from virnucpro_app.config import PredictConfig
    from virnucpro_app.layout import RunLayout
    from virnucpro_app.pipeline.store import RunCheckpoints

PREPARED_SCHEMA = "virnucpro.prepared"
_ROW_FIELDS = ("record_id", "length_bp", "chunks", "kept_frames", "status", "reason")


@dataclass
class PreparedRun:
    """The prepared shards of a run and its per-record account.

    Attributes:
        layout: The run's paths.
        store: The run's checkpoint rules.
        num_shards: Number of shards.
        records: One row per input record, input order.
        seconds: Wall time of the prepare stage (0 when reused).
    """

    layout: RunLayout
    store: RunCheckpoints
    num_shards: int
    records: list[RecordRow]
    seconds: float = 0.0
    reused: bool = False
    _intermediates: list[Path] = field(default_factory=list)

    def shards(self) -> Iterator[ShardFrames]:
        """Each shard's frames, read back from its checkpoint (validated)."""
        for index in range(self.num_shards):
            path = self.layout.shard_path(index, "frames")
            checkpoint = self.store.reuse(path, schema=FRAMES_SCHEMA)
            if checkpoint is None:
                from virnucpro_app.errors import PipelineError

                raise PipelineError(
                    f"{path} vanished during the run; rerun with --resume"
                )
            yield frames_from_state(checkpoint.state)

    def remove_intermediates(self) -> None:
        """Delete the prepared FASTA files (``--keep-intermediate`` keeps them)."""
        for path in self._intermediates:
            path.unlink(missing_ok=True)


def _rows_state(rows: list[RecordRow]) -> dict[str, object]:
    return {name: [getattr(row, name) for row in rows] for name in _ROW_FIELDS}


def _rows_from_state(state: dict[str, list[object]]) -> list[RecordRow]:
    columns = [state[name] for name in _ROW_FIELDS]
    return [
        RecordRow(str(a), int(b), int(c), int(d), str(e), str(f))
        for a, b, c, d, e, f in zip(*columns, strict=True)
    ]


def _intermediates(layout: RunLayout) -> list[Path]:
    return [
        layout.chunks_fasta_path,
        layout.orf_nucleotide_path,
        layout.orf_protein_path,
    ]


def _reuse(
    config: PredictConfig, layout: RunLayout, store: RunCheckpoints
) -> PreparedRun | None:
    checkpoint = store.reuse(layout.prepared_path, schema=PREPARED_SCHEMA)
    if checkpoint is None:
        return None
    num_shards = int(checkpoint.state["num_shards"])
    for index in range(num_shards):
        if not layout.shard_path(index, "frames").exists():
            return None
    del config
    rows = _rows_from_state(checkpoint.state["records"])
    return PreparedRun(
        layout,
        store,
        num_shards,
        rows,
        reused=True,
        _intermediates=_intermediates(layout),
    )


@dataclass
class _ShardWriter:
    """Collects frames and saves a shard each time ``shard_size`` are ready."""

    layout: RunLayout
    store: RunCheckpoints
    shard_size: int
    fasta: tuple[TextIO, TextIO] | None
    ids: list[str] = field(default_factory=list)
    nucleotides: list[str] = field(default_factory=list)
    proteins: list[str] = field(default_factory=list)
    written: int = 0

    def add(self, frame_id: str, nucleotide: str, protein: str) -> None:
        self.ids.append(frame_id)
        self.nucleotides.append(nucleotide)
        self.proteins.append(protein)
        if self.fasta is not None:
            self.fasta[0].write(f">{frame_id}\n{nucleotide}\n")
            self.fasta[1].write(f">{frame_id}\n{protein}\n")
        if len(self.ids) == self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.ids:
            return
        shard = ShardFrames(self.written, self.ids, self.nucleotides, self.proteins)
        self.store.save(
            self.layout.shard_path(self.written, "frames"),
            frames_state(shard),
            schema=FRAMES_SCHEMA,
            metadata={"shard": self.written, "frames": len(shard)},
        )
        self.written += 1
        self.ids, self.nucleotides, self.proteins = [], [], []


def prepare_shards(
    config: PredictConfig, layout: RunLayout, store: RunCheckpoints
) -> PreparedRun:
    """Reuse or compute the prepared shards of a run.

    Raises:
        InputError: An input that stops the run (not FASTA, empty, duplicate IDs).
    """
    reused = _reuse(config, layout, store)
    if reused is not None:
        return reused
    from virnucpro_app.pipeline.records import prepared_records

    started = time.perf_counter()
    intermediates = _intermediates(layout)
    with (
        intermediates[0].open("w", encoding="ascii", newline="\n") as chunks_out,
        intermediates[1].open("w", encoding="ascii", newline="\n") as nucleotide_out,
        intermediates[2].open("w", encoding="ascii", newline="\n") as protein_out,
    ):
        writer = _ShardWriter(
            layout, store, config.shard_size, (nucleotide_out, protein_out)
        )
        rows: list[RecordRow] = []
        for record in prepared_records(
            config.inputs, config.model_type, workers=config.workers
        ):
            rows.append(record.row)
            for chunk_id, chunk in record.chunks:
                chunks_out.write(f">{chunk_id}\n{chunk}\n")
            for frame in record.frames:
                writer.add(*frame)
        writer.flush()
    store.save(
        layout.prepared_path,
        {"num_shards": writer.written, "records": _rows_state(rows)},
        schema=PREPARED_SCHEMA,
        metadata={"records": len(rows), "shards": writer.written},
    )
    return PreparedRun(
        layout,
        store,
        writer.written,
        rows,
        seconds=time.perf_counter() - started,
        _intermediates=intermediates,
    )
