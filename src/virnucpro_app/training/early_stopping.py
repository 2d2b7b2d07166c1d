"""Early stopping on the validation loss, keeping a real copy of the best weights.

The original ``train.py`` stops after ``patience`` epochs in a row without a lower
validation loss, as here. Its "best weights" however are ``model.state_dict()``
itself: a dict of references to the live parameters, which later epochs keep
changing. Loading them back at the end is therefore a no-op, and the original
saves the weights of the *last* epoch. :class:`EarlyStopping` clones the tensors
when the loss improves, so the weights it hands back are those of the best epoch
(docs/app/training.md says so too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class EarlyStopping:
    """Patience counter and best weights of a run; its state is checkpointable.

    Args:
        patience: Epochs in a row without improvement after which to stop (>= 1).

    Attributes:
        best_loss: Lowest validation loss so far (None before the first epoch).
        best_epoch: Epoch of ``best_loss`` (0 before the first epoch).
        bad_epochs: Epochs since the last improvement.
        stopped: True once ``bad_epochs`` reached ``patience``.
        best_weights: A copy of the model's state at ``best_epoch``.

    Example:
        >>> stopper = EarlyStopping(patience=2)
        >>> [stopper.update(loss, epoch) for epoch, loss in enumerate([3, 2, 2, 5], 1)]
        [True, True, False, False]
        >>> stopper.stopped, stopper.best_epoch
        (True, 2)
    """

    patience: int
    best_loss: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.patience < 1:
            msg = f"patience must be at least 1, not {self.patience}"
            raise ValueError(msg)

    def update(self, val_loss: float, epoch: int) -> bool:
        """Record one epoch's validation loss.

        An epoch improves when its loss is strictly lower than every earlier one
        (a NaN loss never improves).

        Returns:
            True when the epoch improved (the caller then calls :meth:`keep`).
        """
        improved = not math.isnan(val_loss) and (
            self.best_loss is None or val_loss < self.best_loss
        )
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
        else:
            self.bad_epochs += 1
            self.stopped = self.bad_epochs >= self.patience
        return improved

    def keep(self, model: nn.Module) -> None:
        """Store a copy (not references) of ``model``'s current weights as the best."""
        self.best_weights = {
            name: tensor.detach().clone() for name, tensor in model.state_dict().items()
        }

    def state_dict(self) -> dict[str, Any]:
        """The state to checkpoint (everything but ``patience``, an option)."""
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpointed :meth:`state_dict`.

        ``stopped`` is recomputed from the counter and this run's ``patience``.
        """
        best_loss = state["best_loss"]
        self.best_loss = None if best_loss is None else float(best_loss)
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped = bool(state["stopped"]) or self.bad_epochs >= self.patience
        self.best_weights = dict(state["best_weights"])
