"""Early stopping: patience on the validation loss; a real copy of the best weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import ckptkit
from virnucpro_app.models.classifier import MLPClassifier
from virnucpro_app.training.early_stopping import EarlyStopping


def _feed(stopper: EarlyStopping, losses: list[float]) -> list[bool]:
    return [stopper.update(loss, epoch) for epoch, loss in enumerate(losses, 1)]


def test_stops_after_patience_epochs_without_a_lower_loss() -> None:
    stopper = EarlyStopping(patience=3)
    assert _feed(stopper, [1.0, 0.8, 0.9, 0.85]) == [True, True, False, False]
    after_two_bad_epochs = stopper.stopped
    assert stopper.update(0.81, 5) is False
    assert (after_two_bad_epochs, stopper.stopped) == (False, True)
    assert (stopper.best_epoch, stopper.best_loss, stopper.bad_epochs) == (2, 0.8, 3)


def test_an_improvement_resets_the_count() -> None:
    stopper = EarlyStopping(patience=2)
    _feed(stopper, [1.0, 1.1, 0.5, 0.6])
    assert not stopper.stopped
    assert (stopper.best_epoch, stopper.bad_epochs) == (3, 1)


def test_an_equal_loss_is_not_an_improvement() -> None:
    stopper = EarlyStopping(patience=1)
    assert _feed(stopper, [0.5, 0.5]) == [True, False]
    assert stopper.stopped


def test_a_nan_loss_never_improves() -> None:
    stopper = EarlyStopping(patience=2)
    assert _feed(stopper, [math.nan, 0.3, math.nan]) == [False, True, False]
    assert stopper.best_epoch == 2


def test_patience_must_be_positive() -> None:
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_best_weights_are_a_copy_not_the_live_state_dict() -> None:
    """The original keeps model.state_dict() itself, which later epochs overwrite."""
    torch.manual_seed(0)
    model = MLPClassifier(6)
    stopper = EarlyStopping(patience=2)
    stopper.update(0.4, 1)
    stopper.keep(model)
    live = model.state_dict()  # what the original stores as "best"
    before = model.hidden_layer.weight.detach().clone()
    with torch.no_grad():
        model.hidden_layer.weight.add_(1.0)  # a later epoch trains on
    assert not torch.equal(live["hidden_layer.weight"], before)  # the quirk
    assert torch.equal(stopper.best_weights["hidden_layer.weight"], before)


def test_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    stopper = EarlyStopping(patience=3)
    _feed(stopper, [0.9, 0.7, 0.8])
    stopper.keep(MLPClassifier(4))
    ckptkit.save(tmp_path / "es.ckpt", stopper.state_dict())
    restored = EarlyStopping(patience=3)
    restored.load_state_dict(ckptkit.load(tmp_path / "es.ckpt").state)
    assert restored.state_dict().keys() == stopper.state_dict().keys()
    assert (restored.best_loss, restored.best_epoch, restored.bad_epochs) == (
        0.7,
        2,
        1,
    )
    for name, tensor in stopper.best_weights.items():
        assert torch.equal(restored.best_weights[name], tensor)
    # both continue to the same decisions
    assert _feed(restored, [0.75, 0.72]) == [False, False]
    assert restored.stopped
