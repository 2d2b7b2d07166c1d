"""The prepare stage: records -> chunks -> kept frames -> shards.

Streams the input once, cuts each record into chunks and keeps its stop-free
frames (``chunking``, ``translation``), and groups the frames into shards of
``shard_size`` frames, each saved as a checkpoint (``stages.shards``). The
per-record account and the shard count are saved last, as ``prepared.ckpt``;
a resumed run whose ``prepared.ckpt`` and shard files are sound skips this stage
(it is fast; a half-done one is simply redone, giving the same shards).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from virnucpro_app.errors import PipelineError
from virnucpro_app.layout import PREPARED_SCHEMA, ShardStage
from virnucpro_app.records import RecordRow, RecordStatus
from virnucpro_app.stages.shards import ShardFrames, frames_from_state, frames_state

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from virnucpro_app.config import RunConfig
    from virnucpro_app.layout import RunLayout
    from virnucpro_app.stages.store import RunCheckpoints

LOG = logging.getLogger("virnucpro_app")
#: The fields of each record row stored in ``prepared.ckpt``: stored name -> row
#: attribute (the names are part of the checkpoint's contract).
_STORED_FIELDS = {
    "record_id": "record_id",
    "length_bp": "length_bp",
    "chunks": "num_chunks",
    "kept_frames": "num_frames",
    "status": "status",
    "reason": "reason",
}


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
    shard_costs: list[int] = field(default_factory=list)
    seconds: float = 0.0
    _intermediates: list[Path] = field(default_factory=list)

    def shards(self) -> Iterator[ShardFrames]:
        """Each shard's frames, read back from its checkpoint (validated)."""
        for index in range(self.num_shards):
            yield self.shard(index)

    def shard(self, index: int) -> ShardFrames:
        """One shard's frames, read back from its checkpoint (validated).

        Raises:
            PipelineError: The frames checkpoint is gone (rerun with --resume).
        """
        checkpoint = self.store.reuse_shard(index, ShardStage.FRAMES)
        if checkpoint is None:
            path = self.layout.shard_path(index, ShardStage.FRAMES)
            raise PipelineError(f"{path} vanished during the run; rerun with --resume")
        return frames_from_state(checkpoint.state)

    def cost(self, index: int) -> int:
        """Work in shard ``index`` (bases + residues; frames for old files)."""
        return self.shard_costs[index] if self.shard_costs else 1

    def remove_intermediates(self) -> None:
        """Delete the prepared FASTA files (``--keep-intermediate`` keeps them)."""
        for path in self._intermediates:
            path.unlink(missing_ok=True)


def _rows_state(rows: list[RecordRow]) -> dict[str, object]:
    return {
        stored: [getattr(row, field) for row in rows]
        for stored, field in _STORED_FIELDS.items()
    }


def _rows_from_state(state: dict[str, list[object]]) -> list[RecordRow]:
    columns = [state[stored] for stored in _STORED_FIELDS]
    return [
        RecordRow(index, "", str(a), int(b), int(c), int(d), str(e), str(f))
        for index, (a, b, c, d, e, f) in enumerate(zip(*columns, strict=True))
    ]


def _row_of(account: RecordRow) -> RecordRow:
    """A prepare account as predict reports it.

    ``prepared`` records become ``scored``; a skip's reason is its message, on
    one line.
    """
    status = RecordStatus.SCORED if account.status == RecordStatus.PREPARED else None
    reason = account.detail or account.reason
    return replace(
        account,
        status=str(status or account.status),
        reason=reason.replace("\t", " ").replace("\n", " "),
        detail="",
    )


def _intermediates(layout: RunLayout) -> list[Path]:
    return [
        layout.chunks_fasta_path,
        layout.orf_nucleotide_path,
        layout.orf_protein_path,
    ]


def _reuse(layout: RunLayout, store: RunCheckpoints) -> PreparedRun | None:
    checkpoint = store.reuse(layout.prepared_path, schema=PREPARED_SCHEMA)
    if checkpoint is None:
        return None
    num_shards = int(checkpoint.state["num_shards"])
    for index in range(num_shards):
        if not layout.shard_path(index, ShardStage.FRAMES).exists():
            return None
    rows = _rows_from_state(checkpoint.state["records"])
    return PreparedRun(
        layout,
        store,
        num_shards,
        rows,
        shard_costs=[int(c) for c in checkpoint.state.get("shard_costs", [])],
        _intermediates=_intermediates(layout),
    )


@dataclass
class _ShardWriter:
    """Collects frames and saves a shard each time ``shard_size`` are ready."""

    store: RunCheckpoints
    shard_size: int
    ids: list[str] = field(default_factory=list)
    nucleotides: list[str] = field(default_factory=list)
    proteins: list[str] = field(default_factory=list)
    written: int = 0
    costs: list[int] = field(default_factory=list)
    cost: int = 0

    def add(self, frame_id: str, nucleotide: str, protein: str) -> None:
        self.cost += len(nucleotide) + len(protein)
        self.ids.append(frame_id)
        self.nucleotides.append(nucleotide)
        self.proteins.append(protein)
        if len(self.ids) == self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.ids:
            return
        shard = ShardFrames(self.written, self.ids, self.nucleotides, self.proteins)
        self.store.save_shard(
            self.written,
            ShardStage.FRAMES,
            frames_state(shard),
            metadata={"shard": self.written, "frames": len(shard)},
        )
        self.written += 1
        self.costs.append(self.cost)
        self.ids, self.nucleotides, self.proteins, self.cost = [], [], [], 0


def prepare_shards(
    config: RunConfig, store: RunCheckpoints, *, reuse_only: bool = False
) -> PreparedRun:
    """Reuse or compute the prepared shards of a run folder.

    Args:
        config: The run folder's job.
        store: Its checkpoint rules.
        reuse_only: Only read what rank 0 prepared (other ranks).

    Raises:
        InputError: An input that stops the run (not FASTA, empty, duplicate IDs).
        PipelineError: ``reuse_only`` and nothing was prepared.
    """
    layout = config.layout
    reused = _reuse(layout, store)
    if reused is not None:
        return reused
    if reuse_only:
        raise PipelineError(
            f"{layout.prepared_path} is missing after rank 0 prepared it"
        )

    from virnucpro_app.fasta import read_records
    from virnucpro_app.prepare import prepare_records, write_fasta

    started = time.perf_counter()
    intermediates = _intermediates(layout)
    with (
        intermediates[0].open("w", encoding="ascii", newline="\n") as chunks_out,
        intermediates[1].open("w", encoding="ascii", newline="\n") as nucleotide_out,
        intermediates[2].open("w", encoding="ascii", newline="\n") as protein_out,
    ):
        writer = _ShardWriter(store, config.options.shard_size)
        rows: list[RecordRow] = []
        batches = prepare_records(
            read_records(config.inputs),
            chunk_size_bp=config.model_type,
            workers=config.workers,
        )
        for batch in batches:
            for account in batch.accounts:
                rows.append(_row_of(account))
                if account.status == RecordStatus.SKIPPED:
                    LOG.warning("%s", account.detail or account.reason)
            write_fasta(chunks_out, batch.chunk_ids, batch.chunk_sequences)
            write_fasta(nucleotide_out, batch.frame_ids, batch.frame_nucleotides)
            write_fasta(protein_out, batch.frame_ids, batch.frame_proteins)
            for frame in zip(
                batch.frame_ids,
                batch.frame_nucleotides,
                batch.frame_proteins,
                strict=True,
            ):
                writer.add(*frame)
        writer.flush()
    store.save(
        layout.prepared_path,
        {
            "num_shards": writer.written,
            "shard_costs": writer.costs,
            "records": _rows_state(rows),
        },
        schema=PREPARED_SCHEMA,
        metadata={"records": len(rows), "shards": writer.written},
    )
    return PreparedRun(
        layout,
        store,
        writer.written,
        rows,
        shard_costs=writer.costs,
        seconds=time.perf_counter() - started,
        _intermediates=intermediates,
    )
