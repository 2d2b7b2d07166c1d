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

import ckptkit
from ckptkit.types import ExitCode
from virnucpro_app.errors import PipelineError
from virnucpro_app.layout import PREPARED_SCHEMA, ShardStage
from virnucpro_app.records import RecordRow, RecordStatus
from virnucpro_app.stages.shards import ShardFrames, frames_from_state, frames_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from virnucpro_app.config import RunConfig
    from virnucpro_app.prepare import PreparedBatch
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
    "detail": "detail",
    "file": "file",
}


@dataclass
class PreparedRun:
    """The prepared shards of a run and its per-record account.

    Attributes:
        config: The run folder's job (to prepare a shard's frames again).
        store: The run's checkpoint rules.
        num_shards: Number of shards.
        records: One row per input record, input order (empty on ranks other
            than 0, which never need them).
        shard_costs: Work in each shard (bases + residues).
        seconds: Wall time of the prepare stage (0 when reused).
        regenerated: Shards whose missing or damaged frames were prepared
            again on their own.
        frame_ids: With ``collect_ids``: every shard's frame IDs.
    """

    config: RunConfig
    store: RunCheckpoints
    num_shards: int
    records: list[RecordRow]
    shard_costs: list[int] = field(default_factory=list)
    seconds: float = 0.0
    regenerated: set[int] = field(default_factory=set)
    frame_ids: list[list[str]] | None = None

    def shard(self, index: int) -> ShardFrames:
        """One shard's frames, read from its checkpoint (validated) once.

        A missing or damaged (set aside) frames checkpoint is prepared again
        from the inputs.
        """
        checkpoint = self.store.reuse_shard(index, ShardStage.FRAMES)
        if checkpoint is not None:
            return frames_from_state(checkpoint.state)
        LOG.info("shard %d: preparing its frames again from the inputs", index + 1)
        self.regenerated.add(index)
        return regenerate_frames(self.config, self.store, index)

    @property
    def exit_code(self) -> ExitCode:
        """``PARTIAL`` when records were skipped, else ``OK``."""
        skipped = any(row.status == RecordStatus.SKIPPED for row in self.records)
        return ExitCode.PARTIAL if skipped else ExitCode.OK

    def cost(self, index: int) -> int:
        """Work in shard ``index`` (bases + residues; frames for old files)."""
        return self.shard_costs[index] if self.shard_costs else 1

    def remove_intermediates(self) -> None:
        """Delete the prepared FASTA files (``--keep-intermediate`` keeps them)."""
        for path in self.config.layout.intermediate_paths:
            path.unlink(missing_ok=True)


def _rows_state(rows: list[RecordRow]) -> dict[str, object]:
    return {
        stored: [getattr(row, field) for row in rows]
        for stored, field in _STORED_FIELDS.items()
    }


def _rows_from_state(state: dict[str, list[object]]) -> list[RecordRow]:
    # Files of earlier versions lack ``detail`` and ``file``.
    present = [(key, attr) for key, attr in _STORED_FIELDS.items() if key in state]
    columns = [state[key] for key, _ in present]
    rows = []
    for index, values in enumerate(zip(*columns, strict=True)):
        fields = dict(zip([attr for _, attr in present], values, strict=True))
        rows.append(
            RecordRow(
                index,
                str(fields.get("file", "")),
                str(fields["record_id"]),
                int(fields["length_bp"]),
                int(fields["num_chunks"]),
                int(fields["num_frames"]),
                str(fields["status"]),
                str(fields["reason"]),
                str(fields.get("detail", "")),
            )
        )
    return rows


def _row_of(account: RecordRow) -> RecordRow:
    """A prepare account as predict reports it: ``prepared`` records are ``scored``."""
    status = RecordStatus.SCORED if account.status == RecordStatus.PREPARED else None
    return replace(account, status=str(status or account.status))


def _reuse(config: RunConfig, store: RunCheckpoints) -> PreparedRun | None:
    layout = config.layout
    checkpoint = store.reuse(layout.prepared_path, schema=PREPARED_SCHEMA)
    if checkpoint is None:
        return None
    num_shards = int(checkpoint.state["num_shards"])
    for index in range(num_shards):
        if not layout.shard_path(index, ShardStage.FRAMES).exists():
            return None
    return PreparedRun(
        config,
        store,
        num_shards,
        _rows_from_state(checkpoint.state["records"]),
        shard_costs=[int(c) for c in checkpoint.state.get("shard_costs", [])],
    )


@dataclass
class _ShardCollector:
    """Collects frames and hands over a shard each time ``shard_size`` are ready."""

    shard_size: int
    on_shard: Callable[[ShardFrames, int], None]
    ids: list[str] = field(default_factory=list)
    nucleotides: list[str] = field(default_factory=list)
    proteins: list[str] = field(default_factory=list)
    count: int = 0
    cost: int = 0

    def add_batch(self, batch: PreparedBatch) -> None:
        frames = zip(
            batch.frame_ids,
            batch.frame_nucleotides,
            batch.frame_proteins,
            strict=True,
        )
        for frame_id, nucleotide, protein in frames:
            self.cost += len(nucleotide) + len(protein)
            self.ids.append(frame_id)
            self.nucleotides.append(nucleotide)
            self.proteins.append(protein)
            if len(self.ids) == self.shard_size:
                self.flush()

    def flush(self) -> None:
        if not self.ids:
            return
        shard = ShardFrames(self.count, self.ids, self.nucleotides, self.proteins)
        self.on_shard(shard, self.cost)
        self.count += 1
        self.ids, self.nucleotides, self.proteins, self.cost = [], [], [], 0


def _save_frames(store: RunCheckpoints, shard: ShardFrames) -> None:
    """Save a shard's frames unless the file already holds exactly these frames."""
    path = store.layout.shard_path(shard.index, ShardStage.FRAMES)
    if path.exists():
        try:
            if ckptkit.inspect(path).metadata.get("digest") == shard.digest:
                return  # prepared again, same frames: keep the file
        except ckptkit.CheckpointError:
            pass  # a damaged header: the file is replaced by the frames it held
    store.save_shard(
        shard.index,
        ShardStage.FRAMES,
        frames_state(shard),
        metadata={
            "shard": shard.index + 1,
            "frames": len(shard),
            "digest": shard.digest,
        },
    )


def _batches(config: RunConfig) -> Iterator[PreparedBatch]:
    from virnucpro_app.fasta import read_records
    from virnucpro_app.prepare import prepare_records

    return prepare_records(
        read_records(config.inputs),
        chunk_size_bp=config.model_type,
        workers=config.workers,
    )


def iter_shards(config: RunConfig) -> Iterator[ShardFrames]:
    """Prepare the inputs again in memory and yield each shard's frames, in order.

    Nothing is written: the prepare stage is deterministic, so these are the
    frames the run's checkpoints hold.
    """
    ready: list[ShardFrames] = []
    collector = _ShardCollector(
        config.options.shard_size, lambda shard, _cost: ready.append(shard)
    )
    for batch in _batches(config):
        collector.add_batch(batch)
        yield from ready
        ready.clear()
    collector.flush()
    yield from ready


def regenerate_frames(
    config: RunConfig, store: RunCheckpoints, index: int
) -> ShardFrames:
    """Prepare shard ``index``'s frames again from the inputs and save them.

    Raises:
        PipelineError: The inputs no longer give that shard.
    """
    for shard in iter_shards(config):
        if shard.index == index:
            _save_frames(store, shard)
            return shard
    raise PipelineError(
        f"the inputs give fewer than {index + 1} shards now: rerun with --force"
    )


def prepare_shards(
    config: RunConfig,
    store: RunCheckpoints,
    *,
    collect_ids: bool = False,
) -> PreparedRun:
    """Reuse or compute the prepared shards of a run folder.

    Args:
        config: The run folder's job.
        store: Its checkpoint rules.
        collect_ids: Also return every shard's frame IDs (``--adopt`` matches
            legacy features to them).

    Raises:
        InputError: An input that stops the run (not FASTA, empty, duplicate IDs).
    """
    layout = config.layout
    reused = _reuse(config, store)
    if reused is not None:
        if collect_ids:
            reused.frame_ids = [shard.ids for shard in iter_shards(config)]
        return reused

    from virnucpro_app.prepare import write_fasta

    started = time.perf_counter()
    intermediates = layout.intermediate_paths
    rows: list[RecordRow] = []
    costs: list[int] = []
    frame_ids: list[list[str]] = []

    def on_shard(shard: ShardFrames, cost: int) -> None:
        costs.append(cost)
        if collect_ids:
            frame_ids.append(shard.ids)
        _save_frames(store, shard)

    with (
        intermediates[0].open("w", encoding="ascii", newline="\n") as chunks_out,
        intermediates[1].open("w", encoding="ascii", newline="\n") as nucleotide_out,
        intermediates[2].open("w", encoding="ascii", newline="\n") as protein_out,
    ):
        collector = _ShardCollector(config.options.shard_size, on_shard)
        for batch in _batches(config):
            for account in batch.accounts:
                rows.append(_row_of(account))
                if account.status == RecordStatus.SKIPPED:
                    LOG.warning("%s", account.detail or account.reason)
            write_fasta(chunks_out, batch.chunk_ids, batch.chunk_sequences)
            write_fasta(nucleotide_out, batch.frame_ids, batch.frame_nucleotides)
            write_fasta(protein_out, batch.frame_ids, batch.frame_proteins)
            collector.add_batch(batch)
        collector.flush()
    store.save(
        layout.prepared_path,
        {
            "num_shards": collector.count,
            "shard_costs": costs,
            "records": _rows_state(rows),
        },
        schema=PREPARED_SCHEMA,
        metadata={"records": len(rows), "shards": collector.count},
    )
    return PreparedRun(
        config,
        store,
        collector.count,
        rows,
        shard_costs=costs,
        seconds=time.perf_counter() - started,
        frame_ids=frame_ids if collect_ids else None,
    )
