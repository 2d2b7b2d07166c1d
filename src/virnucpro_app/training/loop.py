"""The epoch loop: train, validate, stop early, checkpoint every epoch.

Each epoch ends with one ``ckptkit.CheckpointManager`` step (step = epoch number)
holding everything the rest of the run depends on: model, optimizer and
scheduler state, the early-stopping state with its copy of the best weights,
the global RNG states (torch, CUDA, numpy, python: dropout draws from torch's),
the data-order generator and the per-epoch history. A run resumed from any step
therefore continues exactly as the uninterrupted run did: on the CPU its final
weights are bit-identical. The manager saves asynchronously (the next epoch
trains while the previous one is written) and keeps the last 3 steps and the
best by validation loss.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

from virnucpro_app.errors import PipelineError
from virnucpro_app.models.classifier import MLPClassifier
from virnucpro_app.training.data import epoch_batches, split_indices
from virnucpro_app.training.early_stopping import EarlyStopping
from virnucpro_app.training.epoch_report import EpochReport, training_bar
from virnucpro_app.training.metrics import binary_metrics

if TYPE_CHECKING:
    import ckptkit
    from virnucpro_app.training.data import LabelledFeatures, Split
    from virnucpro_app.training.epoch_report import TrainingBar
    from virnucpro_app.training.recipe import TrainRecipe

LOG = logging.getLogger("virnucpro_app")
TRAIN_STATE_SCHEMA = "virnucpro.train_state"
TRAIN_STATE_VERSION = "1.0"
#: Rows per forward pass when validating (eval mode: results do not depend on it
#: beyond float rounding, and it is fixed, so runs stay reproducible).
EVAL_BATCH_SIZE = 1024


def rng_state() -> dict[str, Any]:
    """Every global random state: torch CPU, each CUDA device, numpy, python."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),  # noqa: NPY002 - the global state
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])  # noqa: NPY002 - the global state
    random.setstate(state["python"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python once, at the start of a run."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global state is what we seed
    torch.manual_seed(seed)


@dataclass(frozen=True)
class TrainOutcome:
    """How training ended.

    Attributes:
        model: The MLP holding the best epoch's weights, in eval mode, on the CPU.
        best_epoch: The epoch with the lowest validation loss.
        epochs_run: Epochs trained in total (across resumes).
        stopped_early: Early stopping ended the run before ``epochs``.
        history: One JSON report per epoch.
        resumed_from: The epoch checkpoint this run continued from, if any.
        num_train: Rows in the training set.
        num_val: Rows in the validation set.
    """

    model: MLPClassifier
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]]
    resumed_from: int | None
    num_train: int
    num_val: int


@dataclass(frozen=True)
class LoopOptions:
    """Where the loop runs and what it shows; none of it is part of the identity.

    Attributes:
        batch_pause_s: Sleep after each batch (a testing aid that widens the
            window for kills; it changes no number).
    """

    device: str = "cpu"
    progress: bool = False
    batch_pause_s: float = 0.0


class TrainingLoop:
    """Trains the MLP on labelled features with checkpoints in ``manager``.

    Construction seeds the global random generators (torch, numpy, python) with
    ``recipe.seed`` and draws the initial weights; :meth:`resume` then replaces
    every state with a checkpoint's.

    Args:
        manager: The run's checkpoint manager (``train/``).
        identity: What, besides the recipe (but its epochs), a resumed run must
            share with the run it continues (the features).
        options: Device, progress bar and the testing pause (None: the CPU,
            quietly).
    """

    def __init__(
        self,
        data: LabelledFeatures,
        recipe: TrainRecipe,
        *,
        manager: ckptkit.CheckpointManager,
        identity: dict[str, Any],
        options: LoopOptions | None = None,
    ) -> None:
        self.recipe, self.manager = recipe, manager
        self.identity = {**recipe.identity(), **identity}
        self.options = options or LoopOptions()
        device = self.device = self.options.device
        self.split: Split = split_indices(len(data), recipe.val_fraction, recipe.seed)
        self.features = data.features.to(device)
        self.labels = data.labels.to(device)
        seed_everything(recipe.seed)
        self.model = MLPClassifier(int(data.features.shape[1])).to(device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=recipe.step_size, gamma=recipe.gamma
        )
        # The data order has its own generator, seeded apart from the split's.
        self.order = torch.Generator().manual_seed(recipe.seed + 1)
        self.early = EarlyStopping(recipe.patience)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0

    def state(self) -> dict[str, Any]:
        """The checkpoint of the epoch just finished."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.early.state_dict(),
            "data_order": self.order.get_state(),
            "rng": rng_state(),
            "history": self.history,
            "identity": self.identity,
        }

    def load_state(self, state: dict[str, Any], path: object) -> None:
        """Continue from a checkpoint written by :meth:`state`.

        Raises:
            PipelineError: The checkpoint belongs to a run with other features or
                hyper-parameters (naming what changed).
        """
        stored = state["identity"]
        changes = [
            f"{key} changed ({stored.get(key)!r} -> {value!r})"
            for key, value in self.identity.items()
            if stored.get(key) != value
        ]
        if changes:
            raise PipelineError(
                f"cannot resume the training in {path}: " + "; ".join(changes) + ". "
                "Use --force to start over, or the original inputs and options"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.early.load_state_dict(state["early_stopping"])
        self.order.set_state(state["data_order"])
        set_rng_state(state["rng"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])

    def resume(self) -> int | None:
        """Load the newest valid checkpoint of the manager, if there is one.

        Returns:
            Its epoch, or None for an empty folder.
        """
        if self.manager.latest() is None:
            return None
        # RNG states must stay CPU tensors; load_state_dict moves the rest.
        checkpoint = self.manager.restore(map_location="cpu")
        self.load_state(checkpoint.state, self.manager.directory)
        LOG.info("resuming training after epoch %d", self.epoch)
        return self.epoch

    def run(self, *, resumed_from: int | None = None) -> TrainOutcome:
        """Train until ``epochs`` or early stopping; every epoch is checkpointed."""
        epochs = self.recipe.epochs
        with training_bar(epochs, self.epoch, enabled=self.options.progress) as bar:
            while self.epoch < epochs and not self.early.stopped:
                report = self._one_epoch(bar)
                LOG.info("%s", report.line(epochs))
                bar.epoch_done(report)
                self.manager.save(
                    self.epoch, self.state(), metrics=report.checkpoint_metrics()
                )
        self.manager.wait()
        if self.early.stopped:
            LOG.info(
                "early stopping after epoch %d: no lower validation loss for %d "
                "epochs; best epoch %d",
                self.epoch,
                self.recipe.patience,
                self.early.best_epoch,
            )
        weights = self.early.best_weights
        if not weights:  # every validation loss was NaN: nothing ever improved
            LOG.warning("no epoch had a finite validation loss; writing the last")
            weights = self.model.state_dict()
        best = MLPClassifier(int(self.features.shape[1]))
        best.load_state_dict({k: v.detach().cpu() for k, v in weights.items()})
        return TrainOutcome(
            model=best.eval(),
            best_epoch=self.early.best_epoch,
            epochs_run=self.epoch,
            stopped_early=self.early.stopped,
            history=self.history,
            resumed_from=resumed_from,
            num_train=int(self.split.train.numel()),
            num_val=int(self.split.val.numel()),
        )

    def _one_epoch(self, bar: TrainingBar) -> EpochReport:
        self.epoch += 1
        lr = float(self.scheduler.get_last_lr()[0])
        loss = self._train(bar)
        val_loss, logits = self._validate()
        self.scheduler.step()
        improved = self.early.update(val_loss, self.epoch)
        if improved:
            self.early.keep(self.model)
        val_labels = self.labels[self.split.val.to(self.device)]
        report = EpochReport(
            epoch=self.epoch,
            loss=loss,
            val_loss=val_loss,
            metrics=binary_metrics(
                val_labels, logits.argmax(dim=1), torch.softmax(logits, dim=1)[:, 1]
            ),
            lr=lr,
            improved=improved,
        )
        self.history.append(report.to_json())
        return report

    def _train(self, bar: TrainingBar) -> float:
        self.model.train()
        train = self.split.train
        bar.start_epoch(self.epoch, -(-train.numel() // self.recipe.batch_size))
        total, count = 0.0, 0
        for batch in epoch_batches(train, self.recipe.batch_size, self.order):
            rows = batch.to(self.device)
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(self.features[rows]), self.labels[rows])
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            total += float(loss.item()) * batch.numel()
            count += batch.numel()
            bar.batch_done()
            if self.options.batch_pause_s:
                time.sleep(self.options.batch_pause_s)
        return total / count

    def _validate(self) -> tuple[float, torch.Tensor]:
        self.model.eval()
        rows = self.split.val.to(self.device)
        with torch.no_grad():
            logits = torch.cat(
                [
                    self.model(self.features[rows[start : start + EVAL_BATCH_SIZE]])
                    for start in range(0, rows.numel(), EVAL_BATCH_SIZE)
                ]
            )
            loss = F.cross_entropy(logits, self.labels[rows])
        return float(loss.item()), logits
