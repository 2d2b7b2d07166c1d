"""TrainRecipe: the hyper-parameters of ``train``, defaulting to the original's.

The original ``train.py`` trains VirNucPro's MLP with cross-entropy, SGD (lr 2e-4,
momentum 0.9), StepLR (step 10 epochs, gamma 0.85), batches of 32, a 10 %
validation split drawn with seed 42, up to 200 epochs and early stopping after 5
epochs without a lower validation loss. Everything but ``epochs`` is part of a
run's identity: resuming with another value is refused (raising ``--epochs``
just trains longer).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from virnucpro_app.errors import PipelineError

DEFAULT_EPOCHS = 200
DEFAULT_PATIENCE = 5
DEFAULT_LR = 2e-4
DEFAULT_MOMENTUM = 0.9
DEFAULT_BATCH_SIZE = 32
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_SEED = 42
DEFAULT_STEP_SIZE = 10
DEFAULT_GAMMA = 0.85
#: BatchNorm cannot train on a batch of one sample.
MIN_BATCH_SIZE = 2


@dataclass(frozen=True)
class TrainRecipe:
    """Hyper-parameters of one training run.

    Attributes:
        epochs: Most epochs to train.
        patience: Stop after this many epochs in a row without a lower val loss.
        lr: SGD learning rate.
        momentum: SGD momentum.
        batch_size: Training batch size.
        val_fraction: Fraction of the frames held out for validation (0 < f < 1).
        seed: Seeds the split, the initial weights, dropout and the data order.
        step_size: StepLR period in epochs.
        gamma: StepLR decay factor.
    """

    epochs: int = DEFAULT_EPOCHS
    patience: int = DEFAULT_PATIENCE
    lr: float = DEFAULT_LR
    momentum: float = DEFAULT_MOMENTUM
    batch_size: int = DEFAULT_BATCH_SIZE
    val_fraction: float = DEFAULT_VAL_FRACTION
    seed: int = DEFAULT_SEED
    step_size: int = DEFAULT_STEP_SIZE
    gamma: float = DEFAULT_GAMMA

    def __post_init__(self) -> None:
        checks = (
            ("--epochs", self.epochs >= 1, "at least 1"),
            ("--patience", self.patience >= 1, "at least 1"),
            ("--batch-size", self.batch_size >= MIN_BATCH_SIZE, f">= {MIN_BATCH_SIZE}"),
            ("--step-size", self.step_size >= 1, "at least 1"),
            ("--lr", math.isfinite(self.lr) and self.lr > 0, "> 0"),
            ("--momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("--gamma", 0 < self.gamma <= 1, "in (0, 1]"),
            ("--val-fraction", 0 < self.val_fraction < 1, "between 0 and 1"),
        )
        problems = [f"{flag} must be {rule}" for flag, ok, rule in checks if not ok]
        if problems:
            raise PipelineError("; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON."""
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the run it continues."""
        data = self.to_json()
        del data["epochs"]
        return data
