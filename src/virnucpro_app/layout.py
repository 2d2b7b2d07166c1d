"""Every on-disk name the app writes, in one place.

:class:`RunLayout` turns an output folder into the paths of the files a run
writes there, and :class:`ShardStage` names the per-shard checkpoints and their
schemas. Other modules never spell a file or schema name themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: All chunks of all records, uppercase, one sequence line each.
CHUNKS_FASTA = "chunks.fa"
#: The nucleotide sequence of every kept (stop-free) frame.
ORF_NUCLEOTIDE_FASTA = "orfs.nucleotide.fa"
#: The protein of every kept frame; same IDs, same order as the nucleotide file.
ORF_PROTEIN_FASTA = "orfs.protein.faa"
#: One row per input record: what became of it (see ``records``).
RECORDS_REPORT = "records.tsv"
#: predict: the original's per-frame scores and per-chunk verdicts.
PREDICTIONS = "prediction_results.txt"
CONSENSUS = "prediction_results_highestscore.csv"
#: predict: versions, device, models, timings and counts of the run.
RUN_SUMMARY = "run_summary.json"
#: predict: every stage checkpoint, the manifest and the failure ledger.
CHECKPOINTS_DIR = "checkpoints"
MANIFEST = "manifest.ckpt"
PREPARED = "prepared.ckpt"
#: predict --adopt: the adoption's account (files, counts, refusals).
ADOPTION = "adoption.ckpt"
LOG_FILE = "virnucpro.log"
#: predict under torchrun: one log (and pid) file per rank.
LOGS_DIR = "logs"

#: Checkpoint schemas (``ckptkit`` ``schema=``) of a run's files.
MANIFEST_SCHEMA = "virnucpro.manifest"
PREPARED_SCHEMA = "virnucpro.prepared"
FRAMES_SCHEMA = "virnucpro.frames"
#: Also what ``virnucpro-app embed`` writes.
EMBEDDINGS_SCHEMA = "virnucpro.embeddings"
SCORES_SCHEMA = "virnucpro.scores"
ADOPTION_SCHEMA = "virnucpro.adoption"
#: A shard's rows taken from legacy feature files (``--adopt``), one per encoder.
ADOPTED_SCHEMA = "virnucpro.adopted"


class ShardStage(StrEnum):
    """The checkpoints of one shard, in the order a run writes them.

    The value is the file's tag (``shard-00001.{value}.ckpt``); the two encoder
    stages share their values with :class:`virnucpro_app.models.EncoderKind`, so
    ``ShardStage(kind)`` names an encoder's checkpoint.

    Example:
        >>> ShardStage("esm").schema
        'virnucpro.embeddings'
    """

    FRAMES = "frames"
    DNABERT = "dnabert"
    ESM = "esm"
    SCORES = "scores"

    @property
    def schema(self) -> str:
        """The ckptkit schema of this stage's checkpoints."""
        return _STAGE_SCHEMAS[self]


_STAGE_SCHEMAS = {
    ShardStage.FRAMES: FRAMES_SCHEMA,
    ShardStage.DNABERT: EMBEDDINGS_SCHEMA,
    ShardStage.ESM: EMBEDDINGS_SCHEMA,
    ShardStage.SCORES: SCORES_SCHEMA,
}


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run's outputs under ``output_dir``.

    Example:
        >>> from pathlib import Path
        >>> RunLayout(Path("out")).chunks_fasta_path.as_posix()
        'out/chunks.fa'
    """

    output_dir: Path

    @property
    def chunks_fasta_path(self) -> Path:
        """``chunks.fa``: every chunk, uppercase."""
        return self.output_dir / CHUNKS_FASTA

    @property
    def orf_nucleotide_path(self) -> Path:
        """``orfs.nucleotide.fa``: the nucleotide sequence of every kept frame."""
        return self.output_dir / ORF_NUCLEOTIDE_FASTA

    @property
    def orf_protein_path(self) -> Path:
        """``orfs.protein.faa``: the protein of every kept frame."""
        return self.output_dir / ORF_PROTEIN_FASTA

    @property
    def records_report_path(self) -> Path:
        """``records.tsv``: the per-record account."""
        return self.output_dir / RECORDS_REPORT

    @property
    def intermediate_paths(self) -> tuple[Path, ...]:
        """The prepared FASTA files: chunks, then the frames' two sequences."""
        return (
            self.chunks_fasta_path,
            self.orf_nucleotide_path,
            self.orf_protein_path,
        )

    @property
    def prepare_paths(self) -> tuple[Path, ...]:
        """The four files ``prepare`` writes, in the order it lists them."""
        return (*self.intermediate_paths, self.records_report_path)

    @property
    def checkpoints_dir(self) -> Path:
        """``checkpoints/``: stage checkpoints, manifest and failure ledger."""
        return self.output_dir / CHECKPOINTS_DIR

    @property
    def manifest_path(self) -> Path:
        """``checkpoints/manifest.ckpt``: what makes the run's results reusable."""
        return self.checkpoints_dir / MANIFEST

    @property
    def prepared_path(self) -> Path:
        """``checkpoints/prepared.ckpt``: per-record account and shard count."""
        return self.checkpoints_dir / PREPARED

    def shard_path(self, index: int, stage: ShardStage) -> Path:
        """``checkpoints/shard-00001.{stage}.ckpt`` of the 0-based shard ``index``.

        Example:
            >>> from pathlib import Path
            >>> RunLayout(Path("out")).shard_path(0, ShardStage.ESM).name
            'shard-00001.esm.ckpt'
        """
        return self.checkpoints_dir / f"shard-{index + 1:05d}.{stage.value}.ckpt"

    @property
    def adoption_path(self) -> Path:
        """``checkpoints/adoption.ckpt``: what ``--adopt`` took, and refused."""
        return self.checkpoints_dir / ADOPTION

    def adopted_path(self, index: int, kind: str) -> Path:
        """``checkpoints/shard-00001.{kind}.adopted.ckpt``: a shard's adopted rows.

        Example:
            >>> from pathlib import Path
            >>> RunLayout(Path("out")).adopted_path(0, "esm").name
            'shard-00001.esm.adopted.ckpt'
        """
        return self.checkpoints_dir / f"shard-{index + 1:05d}.{kind}.adopted.ckpt"

    @property
    def predictions_path(self) -> Path:
        """``prediction_results.txt``: one row per kept frame."""
        return self.output_dir / PREDICTIONS

    @property
    def consensus_path(self) -> Path:
        """``prediction_results_highestscore.csv``: one row per chunk."""
        return self.output_dir / CONSENSUS

    @property
    def summary_path(self) -> Path:
        """``run_summary.json``."""
        return self.output_dir / RUN_SUMMARY

    @property
    def log_path(self) -> Path:
        """``virnucpro.log``: the run's log (besides any ``--log-file``)."""
        return self.output_dir / LOG_FILE

    @property
    def logs_dir(self) -> Path:
        """``logs/``: per-rank logs of a torchrun job."""
        return self.output_dir / LOGS_DIR

    def rank_log_path(self, rank: int) -> Path:
        """``logs/rank-N.log``."""
        return self.logs_dir / f"rank-{rank}.log"

    def rank_pid_path(self, rank: int) -> Path:
        """``logs/rank-N.pid``: the process id of rank N."""
        return self.logs_dir / f"rank-{rank}.pid"

    def has_started(self) -> bool:
        """Whether a run here finished preparing (or holds any later result).

        A folder whose run never got that far holds nothing worth keeping: the
        corrected command may take it over.
        """
        if self.prepared_path.exists():
            return True
        later = [stage.value for stage in ShardStage if stage is not ShardStage.FRAMES]
        return (
            any(
                path.name.split(".")[1] in later
                for path in self.checkpoints_dir.glob("shard-*.*.ckpt*")
            )
            or self.adoption_path.exists()
        )

    def run_paths(self) -> tuple[Path, ...]:
        """Everything a predict run writes here (what ``--force`` removes)."""
        return (
            *self.prepare_paths,
            self.predictions_path,
            self.consensus_path,
            self.summary_path,
            self.log_path,
            self.logs_dir,
            self.checkpoints_dir,
        )


#: train: one predict-style run folder per class of training input.
TRAIN_FEATURES_DIR = "features"
#: train: the epoch checkpoints (ckptkit.CheckpointManager's folder).
TRAIN_STATE_DIR = "train"
#: train: recipe, per-epoch metrics, best epoch, inputs and models.
TRAIN_SUMMARY = "train_summary.json"
#: train: suffix of the default checkpoint folder next to ``--output``.
TRAIN_CHECKPOINTS_SUFFIX = ".training"


@dataclass(frozen=True)
class TrainLayout:
    """The paths of one ``train`` run under its checkpoint folder.

    Example:
        >>> from pathlib import Path
        >>> layout = TrainLayout(Path("run"))
        >>> layout.features("virus").checkpoints_dir.as_posix()
        'run/features/virus/checkpoints'
        >>> TrainLayout.default_for(Path("out/model.ckpt")).checkpoint_dir.as_posix()
        'out/model.training'
    """

    checkpoint_dir: Path

    @classmethod
    def default_for(cls, output: Path) -> TrainLayout:
        """The default layout of a run writing ``output``: ``{stem}.training/``."""
        return cls(output.with_name(output.stem + TRAIN_CHECKPOINTS_SUFFIX))

    def features(self, label: str) -> RunLayout:
        """``features/{label}/``: laid out like a predict run's output folder."""
        return RunLayout(self.checkpoint_dir / TRAIN_FEATURES_DIR / label)

    @property
    def train_dir(self) -> Path:
        """``train/``: one checkpoint per epoch (``ckptkit.CheckpointManager``)."""
        return self.checkpoint_dir / TRAIN_STATE_DIR

    @property
    def summary_path(self) -> Path:
        """``train_summary.json``."""
        return self.checkpoint_dir / TRAIN_SUMMARY

    def has_started(self) -> bool:
        """Whether a training here got past preparing its inputs."""
        return self.train_dir.exists() or any(
            self.features(label).has_started() for label in ("virus", "host")
        )

    def run_paths(self) -> tuple[Path, ...]:
        """Everything a train run writes here (what ``--force`` removes)."""
        return (
            self.checkpoint_dir / TRAIN_FEATURES_DIR,
            self.train_dir,
            self.summary_path,
        )
