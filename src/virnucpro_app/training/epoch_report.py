"""What one epoch reports: its numbers, its log line, and the training progress bar."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from virnucpro_app.progress import bar_progress

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.progress import Progress

    from virnucpro_app.training.metrics import BinaryMetrics


@dataclass(frozen=True)
class EpochReport:
    """The numbers of one finished epoch.

    Attributes:
        epoch: 1-based epoch number.
        loss: Mean training loss over the epoch's samples.
        val_loss: Mean validation loss (model in eval mode).
        metrics: Validation accuracy, precision, recall, F1 and ROC AUC.
        lr: Learning rate the epoch trained with.
        improved: The validation loss was the lowest so far.
    """

    epoch: int
    loss: float
    val_loss: float
    metrics: BinaryMetrics
    lr: float
    improved: bool

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values (NaN becomes None)."""
        return {
            "epoch": self.epoch,
            "loss": _json_float(self.loss),
            "val_loss": _json_float(self.val_loss),
            **self.metrics.to_json(),
            "lr": self.lr,
            "improved": self.improved,
        }

    def checkpoint_metrics(self) -> dict[str, float]:
        """The numbers stored with the epoch's checkpoint (``val_loss`` ranks)."""
        return {
            "loss": self.loss,
            "val_loss": self.val_loss,
            "accuracy": self.metrics.accuracy,
            "f1": self.metrics.f1,
            "roc_auc": self.metrics.roc_auc,
        }

    def line(self, epochs: int) -> str:
        """One log line: ``epoch 3/200 loss 0.6931 val_loss 0.6890 ...``."""
        m = self.metrics
        return (
            f"epoch {self.epoch}/{epochs} loss {self.loss:.4f} val_loss "
            f"{self.val_loss:.4f} accuracy {m.accuracy:.4f} precision "
            f"{m.precision:.4f} recall {m.recall:.4f} f1 {m.f1:.4f} roc_auc "
            f"{m.roc_auc:.4f} lr {self.lr:.3g}{' *' if self.improved else ''}"
        )


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


class TrainingBar:
    """Epochs done, and the batches of the epoch in progress (no-op when off)."""

    def __init__(self, progress: Progress | None, epochs: int, done: int) -> None:
        self._progress = progress
        if progress is not None:
            self._epochs = progress.add_task("epochs", total=epochs, completed=done)
            self._batches = progress.add_task("batches", total=None)

    def start_epoch(self, epoch: int, num_batches: int) -> None:
        """Reset the batch bar for ``epoch``."""
        if self._progress is not None:
            self._progress.reset(
                self._batches, total=num_batches, description=f"epoch {epoch}"
            )

    def batch_done(self) -> None:
        """Advance the batch bar by one."""
        if self._progress is not None:
            self._progress.advance(self._batches)

    def epoch_done(self, report: EpochReport) -> None:
        """Advance the epoch bar and show the epoch's validation numbers."""
        if self._progress is not None:
            self._progress.update(
                self._epochs,
                advance=1,
                description=(
                    f"epochs (val_loss {report.val_loss:.4f}, "
                    f"auc {report.metrics.roc_auc:.3f})"
                ),
            )


@contextmanager
def training_bar(epochs: int, done: int, *, enabled: bool) -> Iterator[TrainingBar]:
    """A progress bar over epochs and batches on stderr.

    Args:
        epochs: Epochs planned.
        done: Epochs already done (a resumed run).
        enabled: ``False`` (``--no-progress``) shows nothing.
    """
    if not enabled:
        yield TrainingBar(None, epochs, done)
        return
    with bar_progress() as progress:
        yield TrainingBar(progress, epochs, done)
