"""The labelled feature matrix, its validation split and a resumable data order.

Features are the merged embeddings (DNABERT-S then ESM-2, as predict feeds the
classifier) of every kept frame, virus inputs first, labelled 1, then host
inputs, labelled 0. The split is a permutation drawn from its own generator
seeded with the recipe's seed, so it never depends on anything else the run does.
The order of training samples in each epoch comes from one ``torch.Generator``
that is seeded once and whose state goes into every epoch checkpoint: a resumed
run draws exactly the permutations an uninterrupted run would. No DataLoader
(and no worker processes, whose RNG would be another state to carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from virnucpro_app.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

VIRUS_LABEL = 1
HOST_LABEL = 0


@dataclass(frozen=True)
class LabelledFeatures:
    """Training examples: one merged embedding per frame and its label.

    Attributes:
        features: ``[N, D]`` float32.
        labels: ``[N]`` int64, 1 virus and 0 host.
    """

    features: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_classes(cls, virus: torch.Tensor, host: torch.Tensor) -> LabelledFeatures:
        """Stack virus rows (label 1) then host rows (label 0).

        Raises:
            InputError: A class has no frame, or the widths differ.
        """
        for name, rows in (("--virus", virus), ("--host", host)):
            if rows.shape[0] == 0:
                raise InputError(
                    f"{name} inputs gave no frame to train on (see the records.tsv "
                    "of its features folder for why)"
                )
        if virus.shape[1] != host.shape[1]:
            raise InputError(
                f"virus features are {virus.shape[1]} wide, host {host.shape[1]}"
            )
        labels = torch.cat(
            [
                torch.full((virus.shape[0],), VIRUS_LABEL, dtype=torch.int64),
                torch.full((host.shape[0],), HOST_LABEL, dtype=torch.int64),
            ]
        )
        return cls(torch.cat([virus, host]).to(torch.float32), labels)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Split:
    """Row indices of the training and validation sets."""

    train: torch.Tensor
    val: torch.Tensor


def split_indices(num_samples: int, val_fraction: float, seed: int) -> Split:
    """A random train/validation split, as ``random_split`` with a seeded generator.

    The training set gets ``int((1 - val_fraction) * num_samples)`` rows, the
    validation set the rest.

    Args:
        num_samples: Number of rows.
        val_fraction: Fraction for validation (0 < f < 1).
        seed: Seed of the split's own generator.

    Returns:
        The two index sets (each in the permutation's order).

    Raises:
        InputError: Either set would be empty, or the training set has one row
            (BatchNorm cannot train on a single sample).

    Example:
        >>> split = split_indices(10, 0.2, seed=42)
        >>> len(split.train), len(split.val)
        (8, 2)
    """
    num_train = int((1 - val_fraction) * num_samples)
    if num_train < 2 or num_train == num_samples:  # noqa: PLR2004 - BatchNorm
        raise InputError(
            f"{num_samples} frames cannot be split into a training set of at least "
            f"2 and a non-empty validation set with --val-fraction {val_fraction}: "
            "give more sequences"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_samples, generator=generator)
    return Split(train=order[:num_train], val=order[num_train:])


def epoch_batches(
    train: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """One epoch's batches of row indices, in an order drawn from ``generator``.

    A trailing batch of a single row is left out: BatchNorm cannot train on one
    sample, and the permutation changes every epoch, so no row is left out for good.

    Args:
        train: Row indices of the training set.
        batch_size: Rows per batch.
        generator: The run's data-order generator (advanced by one permutation).
    """
    order = train[torch.randperm(train.numel(), generator=generator)]
    for start in range(0, order.numel(), batch_size):
        batch = order[start : start + batch_size]
        if batch.numel() > 1:
            yield batch
