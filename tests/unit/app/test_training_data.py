"""Training data: labels, the seeded split, the resumable epoch order, the recipe."""

from __future__ import annotations

import pytest
import torch

from virnucpro_app.errors import InputError, PipelineError
from virnucpro_app.training.data import (
    LabelledFeatures,
    epoch_batches,
    split_indices,
)
from virnucpro_app.training.recipe import TrainRecipe


def test_virus_rows_come_first_with_label_one() -> None:
    data = LabelledFeatures.from_classes(torch.ones(2, 3), torch.zeros(3, 3))
    assert data.labels.tolist() == [1, 1, 0, 0, 0]
    assert data.features.dtype == torch.float32
    assert len(data) == 5


def test_a_class_without_frames_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--host"):
        LabelledFeatures.from_classes(torch.ones(2, 3), torch.zeros(0, 3))


def test_split_is_a_seeded_partition_with_a_tenth_for_validation() -> None:
    split = split_indices(95, 0.1, seed=42)
    assert (split.train.numel(), split.val.numel()) == (85, 10)
    assert sorted(torch.cat([split.train, split.val]).tolist()) == list(range(95))
    again = split_indices(95, 0.1, seed=42)
    assert torch.equal(split.val, again.val)
    assert not torch.equal(split.val, split_indices(95, 0.1, seed=7).val)


def test_split_refuses_too_few_frames() -> None:
    with pytest.raises(InputError, match="cannot be split"):
        split_indices(2, 0.1, seed=42)  # int(1.8) = 1 training row


def test_epoch_order_is_reproduced_from_the_generator_state() -> None:
    train = torch.arange(10, 30)
    generator = torch.Generator().manual_seed(1)
    list(epoch_batches(train, 4, generator))  # epoch 1
    saved = generator.get_state()
    epoch2 = [b.tolist() for b in epoch_batches(train, 4, generator)]
    resumed = torch.Generator()
    resumed.set_state(saved)
    assert [b.tolist() for b in epoch_batches(train, 4, resumed)] == epoch2
    assert sorted(row for batch in epoch2 for row in batch) == train.tolist()


def test_a_trailing_batch_of_one_row_is_left_out() -> None:
    batches = list(epoch_batches(torch.arange(9), 4, torch.Generator()))
    assert [b.numel() for b in batches] == [4, 4]


def test_recipe_defaults_are_the_original_recipe() -> None:
    recipe = TrainRecipe()
    assert recipe.to_json() == {
        "epochs": 200,
        "patience": 5,
        "lr": 2e-4,
        "momentum": 0.9,
        "batch_size": 32,
        "val_fraction": 0.1,
        "seed": 42,
        "step_size": 10,
        "gamma": 0.85,
    }
    assert "epochs" not in recipe.identity()


def test_recipe_names_every_bad_option() -> None:
    with pytest.raises(PipelineError, match=r"--lr.*--val-fraction"):
        TrainRecipe(lr=0.0, val_fraction=1.0)
