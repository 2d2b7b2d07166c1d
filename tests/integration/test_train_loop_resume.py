"""The training loop resumed from any epoch checkpoint ends bit-identical (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ckptkit
from virnucpro_app.errors import PipelineError
from virnucpro_app.training.data import LabelledFeatures
from virnucpro_app.training.loop import (
    TRAIN_STATE_SCHEMA,
    TrainingLoop,
    TrainOutcome,
)
from virnucpro_app.training.recipe import TrainRecipe

from ..support.corrupt import flip_tensor_bit

IDENTITY = {"features": "test"}


def _data() -> LabelledFeatures:
    generator = torch.Generator().manual_seed(5)
    virus = torch.randn(40, 12, generator=generator) + 0.4
    host = torch.randn(44, 12, generator=generator) - 0.4
    return LabelledFeatures.from_classes(virus, host)


def _manager(folder: Path) -> ckptkit.CheckpointManager:
    return ckptkit.CheckpointManager(
        folder,
        schema=TRAIN_STATE_SCHEMA,
        keep_last=3,
        keep_best=1,
        best_metric="val_loss",
        async_save=True,
    )


def _train(
    folder: Path,
    recipe: TrainRecipe,
    *,
    resume: bool = False,
    identity: dict[str, str] = IDENTITY,
) -> TrainOutcome:
    with _manager(folder) as manager:
        loop = TrainingLoop(_data(), recipe, manager=manager, identity=identity)
        resumed = loop.resume() if resume else None
        return loop.run(resumed_from=resumed)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys()
    for name, tensor in left.items():
        assert torch.equal(tensor, right[name]), name


RECIPE = TrainRecipe(epochs=6, patience=6, batch_size=8, lr=0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    return _train(tmp_path_factory.mktemp("reference"), RECIPE)


@pytest.mark.parametrize("stop_after", [1, 4])
def test_resumed_training_equals_the_uninterrupted_run(
    tmp_path: Path, reference: TrainOutcome, stop_after: int
) -> None:
    first = _train(tmp_path, TrainRecipe(**{**RECIPE.to_json(), "epochs": stop_after}))
    assert first.epochs_run == stop_after
    torch.rand(100)  # the global RNG moves on meanwhile; the checkpoint restores it
    resumed = _train(tmp_path, RECIPE, resume=True)
    assert resumed.resumed_from == stop_after
    assert resumed.history == reference.history
    assert resumed.best_epoch == reference.best_epoch
    _assert_same_weights(resumed.model, reference.model)


def test_resuming_a_finished_run_trains_no_more(
    tmp_path: Path, reference: TrainOutcome
) -> None:
    _train(tmp_path, RECIPE)
    again = _train(tmp_path, RECIPE, resume=True)
    assert again.resumed_from == RECIPE.epochs
    assert again.history == reference.history
    _assert_same_weights(again.model, reference.model)


def test_the_best_epoch_weights_are_returned_not_the_last(tmp_path: Path) -> None:
    recipe = TrainRecipe(epochs=12, patience=3, batch_size=8, lr=3.0, momentum=0.9)
    outcome = _train(tmp_path, recipe)
    assert outcome.stopped_early
    assert outcome.best_epoch < outcome.epochs_run
    losses = [epoch["val_loss"] for epoch in outcome.history]
    assert outcome.best_epoch == 1 + losses.index(min(losses))
    with _manager(tmp_path) as manager:
        assert manager.best() == outcome.best_epoch
        best = manager.restore(outcome.best_epoch).state["model"]
        last = manager.restore().state["model"]
    weights = outcome.model.state_dict()
    for name, tensor in best.items():
        assert torch.equal(weights[name], tensor), name
    assert not torch.equal(weights["hidden_layer.weight"], last["hidden_layer.weight"])


def test_resume_with_other_hyper_parameters_is_refused(tmp_path: Path) -> None:
    _train(tmp_path, TrainRecipe(epochs=1, batch_size=8))
    with pytest.raises(PipelineError, match=r"lr changed"):
        _train(tmp_path, TrainRecipe(epochs=2, batch_size=8, lr=0.1), resume=True)
    with pytest.raises(PipelineError, match=r"features changed"):
        _train(
            tmp_path,
            TrainRecipe(epochs=2, batch_size=8),
            resume=True,
            identity={"features": "other"},
        )


def test_a_damaged_newest_epoch_falls_back_to_the_previous_one(
    tmp_path: Path, reference: TrainOutcome
) -> None:
    _train(tmp_path, TrainRecipe(**{**RECIPE.to_json(), "epochs": 3}))
    newest = max(tmp_path.glob("step-*.ckpt"))
    flip_tensor_bit(newest)  # in the tensor bytes (the skeleton is the last entry)
    with pytest.warns(ckptkit.CheckpointFallbackWarning, match="restored step 2"):
        resumed = _train(tmp_path, RECIPE, resume=True)
    assert resumed.resumed_from == 2
    _assert_same_weights(resumed.model, reference.model)
