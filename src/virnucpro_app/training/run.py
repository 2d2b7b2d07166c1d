"""run_train: features of both classes, the epoch loop, the classifier and summary.

Order of work: settle the checkpoint folder (refuse, resume or start over);
extract the virus then the host features through the stage library (each class
in its own predict-style folder, resumable); train with a checkpoint per epoch,
continuing from the newest valid one when resuming; write the best epoch's
weights with ``save_classifier`` (the file ``predict --classifier`` reads) and
``train_summary.json``. A run killed at any point and resumed writes the same
classifier as an uninterrupted run (bit for bit on the CPU).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xxhash

import ckptkit
from virnucpro_app import __version__
from virnucpro_app.config import ExistingRun, ModelPaths, RunOptions, check_model_type
from virnucpro_app.errors import InputError, PipelineError
from virnucpro_app.models.classifier import save_classifier
from virnucpro_app.stages.outputs import write_summary
from virnucpro_app.stages.store import (
    CheckpointProblemError,
    RunFolder,
    quarantine_name,
    settle_run_folder,
)
from virnucpro_app.training.data import LabelledFeatures
from virnucpro_app.training.features import FeatureExtractor
from virnucpro_app.training.loop import (
    TRAIN_STATE_SCHEMA,
    TRAIN_STATE_VERSION,
    LoopOptions,
    TrainingLoop,
    TrainOutcome,
)

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.layout import TrainLayout
    from virnucpro_app.stages.manifest import ModelIdentities
    from virnucpro_app.training.features import ClassFeatures
    from virnucpro_app.training.recipe import TrainRecipe

LOG = logging.getLogger("virnucpro_app")
#: Epoch checkpoints kept besides the best one (by validation loss).
KEEP_LAST = 3
KEEP_BEST = 1


@dataclass(frozen=True)
class TrainConfig:
    """A validated training run.

    Attributes:
        virus: Virus FASTA files (label 1).
        host: Host FASTA files (label 0).
        output: The classifier file to write.
        model_type: Chunk size in bp (300 or 500).
        models: DNABERT-S and ESM-2 locations (no classifier).
        options: The run's options, device and precision resolved (``existing``:
            refuse, resume or start over when the folder holds a run).
        identities: The language models' content identities.
        batch_pause_s: Pause after each batch (testing aid, hidden option).
    """

    virus: tuple[Path, ...]
    host: tuple[Path, ...]
    output: Path
    layout: TrainLayout
    recipe: TrainRecipe
    model_type: int
    models: ModelPaths
    options: RunOptions
    identities: ModelIdentities
    batch_pause_s: float = 0.0

    def __post_init__(self) -> None:
        check_model_type(self.model_type)
        if self.output.resolve() == self.layout.checkpoint_dir.resolve():
            raise PipelineError(
                f"--output {self.output} is the checkpoint folder: name the "
                "classifier file differently or pass --checkpoint-dir"
            )
        for flag, paths in (("--virus", self.virus), ("--host", self.host)):
            if not paths:
                raise InputError(f"no {flag} FASTA file given")
            for path in paths:
                if not path.is_file():
                    raise InputError(f"{flag} {path}: input file not found")


def settle_checkpoint_dir(config: TrainConfig) -> None:
    """Refuse, resume in, or clear the checkpoint folder (never asks).

    Raises:
        PipelineError: A run is there (or ``--output`` exists) and neither
            --resume nor --force was given.
    """
    layout, output, existing = config.layout, config.output, config.options.existing
    folder = RunFolder(
        layout.checkpoint_dir,
        (*layout.run_paths(), output),
        flag="--checkpoint-dir",
        job="training",
        started=layout.has_started(),
    )
    settle_run_folder(folder, existing)
    if existing is ExistingRun.REFUSE and output.exists():
        raise PipelineError(f"--output {output} exists: pass --force to replace it")
    layout.checkpoint_dir.mkdir(parents=True, exist_ok=True)


def _digest(data: object) -> str:
    text = json.dumps(data, sort_keys=True)
    return f"xxh3_128:{xxhash.xxh3_128_hexdigest(text.encode())}"


def features_identity(virus: ClassFeatures, host: ClassFeatures) -> dict[str, Any]:
    """The features a resumed training must share with the one it continues."""
    return {
        "virus_features": _digest(virus.manifest.to_json()),
        "host_features": _digest(host.manifest.to_json()),
        "input_dim": int(virus.features.shape[1]),
        "frames": int(virus.features.shape[0] + host.features.shape[0]),
    }


@dataclass
class _Training:
    """The loop of a run and the manager of its epoch checkpoints."""

    config: TrainConfig
    data: LabelledFeatures
    identity: dict[str, Any]

    def start(self) -> tuple[ckptkit.CheckpointManager, TrainingLoop]:
        manager = ckptkit.CheckpointManager(
            self.config.layout.train_dir,
            schema=TRAIN_STATE_SCHEMA,
            version=TRAIN_STATE_VERSION,
            keep_last=KEEP_LAST,
            keep_best=KEEP_BEST,
            best_metric="val_loss",
            mode="min",
            async_save=True,
        )
        options = self.config.options
        loop = TrainingLoop(
            self.data,
            self.config.recipe,
            manager=manager,
            identity=self.identity,
            options=LoopOptions(
                options.device, options.progress, self.config.batch_pause_s
            ),
        )
        return manager, loop

    def run(self) -> tuple[TrainOutcome, dict[str, Any]]:
        """Train (resuming when asked); the outcome and what the folder keeps."""
        manager, loop = self.start()
        try:
            resumed = None
            if self.config.options.existing is ExistingRun.RESUME:
                try:
                    resumed = loop.resume()
                except ckptkit.CheckpointNotFoundError as error:
                    manager.close()
                    self._set_aside(error)
                    manager, loop = self.start()
            outcome = loop.run(resumed_from=resumed)
            return outcome, {"steps": manager.steps(), "best_step": manager.best()}
        finally:
            manager.close()

    def _set_aside(self, error: ckptkit.CheckpointNotFoundError) -> None:
        """No valid epoch checkpoint: stop, or (--force-resume) rename and restart.

        Raises:
            CheckpointProblemError: Without --force-resume (exit 3).
        """
        train_dir = self.config.layout.train_dir
        if not self.config.options.force_resume:
            raise CheckpointProblemError(
                f"{train_dir}: no epoch checkpoint can be restored ({error.reason}). "
                "Rerun with --force-resume to set them aside (kept, renamed) and "
                "train from the start"
            ) from error
        target = quarantine_name(train_dir)
        train_dir.rename(target)
        LOG.warning(
            "%s: %s; set aside as %s, training from the start",
            train_dir,
            error.reason,
            target.name,
        )


def _training_metadata(
    config: TrainConfig, outcome: TrainOutcome, split: dict[str, int]
) -> dict[str, Any]:
    best = next((e for e in outcome.history if e["epoch"] == outcome.best_epoch), None)
    return {
        "virnucpro_app_version": __version__,
        "recipe": config.recipe.to_json(),
        "best_epoch": outcome.best_epoch,
        "best": best,
        "epochs_run": outcome.epochs_run,
        "stopped_early": outcome.stopped_early,
        "split": split,
        "dnabert": config.identities.dnabert,
        "esm": config.identities.esm,
        "precision": config.options.precision,
        "labels": {"virus": 1, "host": 0},
    }


def run_train(config: TrainConfig) -> dict[str, Any]:
    """Run (or resume) a training job and write the classifier and its summary.

    Returns:
        The contents of ``train_summary.json``.

    Raises:
        InputError: Unreadable inputs, or too few frames to split.
        PipelineError: Checkpoint folder in the way, inputs/models/options changed.
        CheckpointProblemError: A damaged checkpoint without --force-resume.
    """
    started = time.perf_counter()
    settle_checkpoint_dir(config)
    extractor = FeatureExtractor(
        config.model_type, config.models, config.options, config.identities
    )
    virus = extractor.extract("virus", config.virus, config.layout.features("virus"))
    host = extractor.extract("host", config.host, config.layout.features("host"))
    data = LabelledFeatures.from_classes(virus.features, host.features)
    del extractor  # frees the language models before training
    identity = features_identity(virus, host)
    outcome, facts = _Training(config, data, identity).run()
    split = {"train": outcome.num_train, "val": outcome.num_val}
    metadata: dict[str, Any] = {"training": _training_metadata(config, outcome, split)}
    if config.models.demo:
        from virnucpro_app.models.demo_weights import DEMO_MARKER

        metadata["virnucpro_demo"] = DEMO_MARKER
    config.output.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(
        config.output,
        outcome.model,
        chunk_size=config.model_type,
        metadata=metadata,
    )
    summary = {
        **metadata["training"],
        "output": str(config.output),
        "checkpoint_dir": str(config.layout.checkpoint_dir),
        "model_type": config.model_type,
        "device": config.options.device,
        "demo_models": config.models.demo,
        "features": {"virus": virus.summary(), "host": host.summary()},
        "resumed_from_epoch": outcome.resumed_from,
        "history": outcome.history,
        "checkpoints": facts,
        "wall_seconds": time.perf_counter() - started,
    }
    write_summary(config.layout.summary_path, summary)
    LOG.info(
        "wrote %s (best epoch %d of %d%s)",
        config.output,
        outcome.best_epoch,
        outcome.epochs_run,
        ", stopped early" if outcome.stopped_early else "",
    )
    return summary
