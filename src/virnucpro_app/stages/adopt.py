"""``predict --adopt LEGACY_DIR``: take the features older runs already computed.

The feature files of the original VirNucPro and its earlier GPU refactor
(legacy 0.x) are read by :mod:`virnucpro_app.legacy_features`, only through
ckptkit's safe loader, and never written.

Features are matched to this run's frames by frame ID (``{record}_chunk_{k}F1``
...: the legacy run must have used the same input files and chunk size). A
matching feature of the right width is adopted: it is written into the shard's
``shard-NNNNN.{kind}.adopted.ckpt`` and the embed stage takes it instead of
computing it. What cannot be adopted is counted with the reason: an unknown ID
(not a frame of this run), a duplicate ID, the wrong width (another model), or
a damaged file. The account is saved as ``adoption.ckpt`` (the stage is done
once per run folder) and goes into ``run_summary.json``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from virnucpro_app.layout import ADOPTED_SCHEMA, ADOPTION_SCHEMA
from virnucpro_app.legacy_features import (
    DAMAGED,
    WRONG_WIDTH,
    LegacyFile,
    LegacyFileError,
    read_legacy_features,
)
from virnucpro_app.stages.embed import AdoptedRows
from virnucpro_app.stages.prepare import iter_shards

if TYPE_CHECKING:
    from virnucpro_app.config import RunConfig
    from virnucpro_app.models import EncoderKind
    from virnucpro_app.stages.prepare import PreparedRun
    from virnucpro_app.stages.store import RunCheckpoints

LOG = logging.getLogger("virnucpro_app")


@dataclass
class FileOutcome:
    """What became of one legacy file.

    Attributes:
        name: Its path relative to the ``--adopt`` folder.
        kind: ``dnabert``, ``esm`` or ``merged``.
        rows: Feature rows it holds (0 when it could not be read).
        adopted: Rows taken (frames given a feature by it).
        unknown_ids: Rows whose ID is not a frame of this run.
        duplicate_ids: Rows whose frame already had a feature of that kind.
        refused: Why the whole file was refused (wrong width, damaged), or "".
    """

    name: str
    kind: str
    rows: int = 0
    adopted: int = 0
    unknown_ids: int = 0
    duplicate_ids: int = 0
    refused: str = ""


@dataclass
class AdoptionReport:
    """The adoption's account: per file, and totals.

    Attributes:
        folder: The ``--adopt`` folder.
        files: One outcome per legacy file.
        adopted: Features adopted per encoder (``dnabert``, ``esm``).
    """

    folder: str
    files: list[FileOutcome] = field(default_factory=list)
    adopted: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("dnabert", "esm"), 0)
    )

    @property
    def num_adopted(self) -> int:
        """Features adopted, both encoders."""
        return sum(self.adopted.values())

    def refused(self) -> dict[str, int]:
        """Refusals by reason: rows for IDs and widths, files for damage."""
        return {
            "unknown_id": sum(f.unknown_ids for f in self.files),
            "duplicate_id": sum(f.duplicate_ids for f in self.files),
            "wrong_width": sum(
                f.rows for f in self.files if f.refused.startswith(WRONG_WIDTH)
            ),
            "damaged_file": sum(1 for f in self.files if f.refused.startswith(DAMAGED)),
        }

    def to_json(self, computed: dict[str, int] | None = None) -> dict[str, Any]:
        """The account as JSON (``computed``: frames embedded, for the summary)."""
        data: dict[str, Any] = {
            "folder": self.folder,
            "adopted": dict(self.adopted),
            "refused": self.refused(),
            "files": [asdict(outcome) for outcome in self.files],
        }
        if computed is not None:
            data["computed"] = dict(computed)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdoptionReport:
        """Read a stored account."""
        return cls(
            str(data["folder"]),
            [FileOutcome(**item) for item in data["files"]],
            {str(k): int(v) for k, v in data["adopted"].items()},
        )

    def line(self) -> str:
        """One log line: what was adopted and what refused, and why."""
        refused = self.refused()
        parts = [
            f"{refused['unknown_id']} rows with IDs that are not frames of this run",
            f"{refused['duplicate_id']} duplicate rows",
            f"{refused['wrong_width']} rows of the wrong width",
            f"{refused['damaged_file']} damaged files",
        ]
        details = "; ".join(f"{f.name}: {f.refused}" for f in self.files if f.refused)
        return (
            f"adopted {self.adopted['dnabert']} DNABERT-S and {self.adopted['esm']} "
            f"ESM-2 features from {len(self.files)} legacy files in {self.folder}; "
            f"refused {', '.join(parts)}" + (f" ({details})" if details else "")
        )


def is_pending(store: RunCheckpoints) -> bool:
    """Whether the run folder's adoption has not been done yet."""
    return not store.layout.adoption_path.exists()


@dataclass
class _Collector:
    """Adopted rows per encoder and shard, saved as soon as a shard is whole."""

    store: RunCheckpoints
    shard_sizes: list[int]
    rows: dict[str, dict[int, dict[int, torch.Tensor]]] = field(
        default_factory=lambda: {"dnabert": {}, "esm": {}}
    )
    saved: set[tuple[str, int]] = field(default_factory=set)
    count: dict[str, int] = field(default_factory=lambda: {"dnabert": 0, "esm": 0})

    def has(self, kind: str, shard: int, row: int) -> bool:
        return (kind, shard) in self.saved or row in self.rows[kind].get(shard, {})

    def add(self, kind: str, shard: int, row: int, values: torch.Tensor) -> None:
        taken = self.rows[kind].setdefault(shard, {})
        taken[row] = values.clone()
        self.count[kind] += 1
        if len(taken) == self.shard_sizes[shard]:
            self.save(kind, shard)

    def save(self, kind: str, shard: int) -> None:
        taken = self.rows[kind].pop(shard)
        order = sorted(taken)
        self.store.save(
            self.store.layout.adopted_path(shard, kind),
            {
                "rows": torch.tensor(order, dtype=torch.int64),
                "embeddings": torch.stack([taken[row] for row in order]),
            },
            schema=ADOPTED_SCHEMA,
            metadata={"shard": shard + 1, "kind": kind, "rows": len(order)},
        )
        self.saved.add((kind, shard))

    def finish(self) -> None:
        for kind, shards in self.rows.items():
            for shard in sorted(shards):
                self.save(kind, shard)


def _widths(config: RunConfig) -> dict[str, int]:
    from virnucpro_app.models.dnabert_files import dnabert_width
    from virnucpro_app.models.esm2_files import esm_width

    return {
        "dnabert": dnabert_width(config.models.dnabert),
        "esm": esm_width(config.models.esm),
    }


def _split(
    kind: str, rows: torch.Tensor, widths: dict[str, int]
) -> dict[str, torch.Tensor]:
    """The file's rows per encoder, after the width check."""
    width = int(rows.shape[1])
    if kind == "merged":
        needed = widths["dnabert"] + widths["esm"]
        if width != needed:
            msg = f"{WRONG_WIDTH}: {width} where {needed} (DNABERT-S + ESM-2) is needed"
            raise LegacyFileError(msg)
        return {
            "dnabert": rows[:, : widths["dnabert"]],
            "esm": rows[:, widths["dnabert"] :],
        }
    if width != widths[kind]:
        raise LegacyFileError(f"{WRONG_WIDTH}: {width} where {widths[kind]} is needed")
    return {kind: rows}


def _adopt_file(
    legacy: LegacyFile,
    frames: dict[str, tuple[int, int]],
    widths: dict[str, int],
    collector: _Collector,
) -> FileOutcome:
    outcome = FileOutcome(legacy.name, legacy.kind)
    try:
        ids, rows = read_legacy_features(legacy)
        outcome.rows = len(ids)
        parts = _split(legacy.kind, rows, widths)
    except LegacyFileError as refusal:
        outcome.refused = str(refusal)
        return outcome
    for position, frame_id in enumerate(ids):
        where = frames.get(frame_id)
        if where is None:
            outcome.unknown_ids += 1
            continue
        wanted = [kind for kind in parts if not collector.has(kind, *where)]
        if not wanted:
            outcome.duplicate_ids += 1
            continue
        for kind in wanted:
            collector.add(kind, *where, parts[kind][position])
        outcome.adopted += 1
    return outcome


def adopt_features(
    config: RunConfig,
    store: RunCheckpoints,
    legacy: tuple[LegacyFile, ...],
    prepared: PreparedRun,
) -> AdoptionReport:
    """Adopt the legacy features that match this run's frames (once per folder).

    Args:
        config: The run (``adopt_dir``, the models, for their widths).
        store: The run folder's checkpoints.
        legacy: The files :func:`find_legacy_files` found.
        prepared: The prepared shards (their frame IDs, when just prepared).

    Returns:
        The account (read back from ``adoption.ckpt`` on a resumed run).

    Raises:
        ModelLoadError: The models' widths cannot be read (checked before).
    """
    done = store.reuse(store.layout.adoption_path, schema=ADOPTION_SCHEMA)
    if done is not None:
        report = AdoptionReport.from_json(done.info.metadata)
        LOG.info("%s", report.line())
        return report
    shard_ids = prepared.frame_ids
    if shard_ids is None:
        shard_ids = [shard.ids for shard in iter_shards(config)]
    frames = {
        frame_id: (shard, row)
        for shard, ids in enumerate(shard_ids)
        for row, frame_id in enumerate(ids)
    }
    widths = _widths(config)
    collector = _Collector(store, [len(ids) for ids in shard_ids])
    report = AdoptionReport(str(config.adopt_dir))
    for item in legacy:
        report.files.append(_adopt_file(item, frames, widths, collector))
    collector.finish()
    report.adopted = dict(collector.count)
    store.save(
        store.layout.adoption_path,
        {},
        schema=ADOPTION_SCHEMA,
        metadata=report.to_json(),
    )
    LOG.info("%s", report.line())
    return report


def adopted_rows(
    store: RunCheckpoints, index: int, kind: EncoderKind
) -> AdoptedRows | None:
    """The adopted rows of shard ``index`` for ``kind``, if any (for embed_shard)."""
    path = store.layout.adopted_path(index, str(kind))
    checkpoint = store.reuse(path, schema=ADOPTED_SCHEMA)
    if checkpoint is None:
        return None
    rows = [int(row) for row in checkpoint.state["rows"].tolist()]
    return AdoptedRows(rows, checkpoint.state["embeddings"])
