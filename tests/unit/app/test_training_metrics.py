"""Validation metrics of train against values worked out by hand."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from virnucpro_app.training.metrics import binary_metrics, roc_auc


def test_confusion_metrics_match_hand_computed_values() -> None:
    # TP = 3 (rows 0, 1, 6), FN = 1 (row 2), FP = 2 (rows 3, 5), TN = 2 (rows 4, 7)
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0])
    scores = torch.tensor([0.9, 0.8, 0.3, 0.7, 0.2, 0.6, 0.55, 0.1])
    metrics = binary_metrics(labels, predictions, scores)
    assert metrics.accuracy == 5 / 8
    assert metrics.precision == 3 / 5
    assert metrics.recall == 3 / 4
    assert metrics.f1 == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    # positives 0.9 0.8 0.3 0.55 against negatives 0.7 0.2 0.6 0.1:
    # 0.9 and 0.8 beat all 4, 0.55 beats 2, 0.3 beats 2 -> 12 of 16 pairs
    assert metrics.roc_auc == 12 / 16


def test_roc_auc_counts_tied_pairs_as_one_half() -> None:
    # pairs: (0.5 vs 0.5) tie, (0.5 vs 0.1) win, (0.9 vs 0.5) win, (0.9 vs 0.1) win
    auc = roc_auc(torch.tensor([1, 0, 1, 0]), torch.tensor([0.5, 0.5, 0.9, 0.1]))
    assert auc == 3.5 / 4


def test_roc_auc_is_nan_when_only_one_class_is_present() -> None:
    assert math.isnan(roc_auc(torch.tensor([1, 1]), torch.tensor([0.2, 0.8])))
    metrics = binary_metrics(
        torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([0.1, 0.2])
    )
    assert math.isnan(metrics.roc_auc)
    assert metrics.to_json()["roc_auc"] is None


def test_precision_recall_f1_are_zero_when_their_denominator_is() -> None:
    metrics = binary_metrics(
        torch.tensor([1, 0, 1]), torch.tensor([0, 0, 0]), torch.tensor([0.4, 0.1, 0.3])
    )
    assert (metrics.precision, metrics.recall, metrics.f1) == (0.0, 0.0, 0.0)
    assert metrics.accuracy == 1 / 3
    assert metrics.roc_auc == 1.0


def test_perfect_predictions_score_one_everywhere() -> None:
    labels = torch.tensor([0, 1, 1, 0])
    metrics = binary_metrics(labels, labels, torch.tensor([0.1, 0.9, 0.8, 0.3]))
    assert (metrics.accuracy, metrics.precision, metrics.recall) == (1.0, 1.0, 1.0)
    assert (metrics.f1, metrics.roc_auc) == (1.0, 1.0)


def test_metrics_refuse_inputs_of_different_lengths_or_none() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics(torch.tensor([1, 0]), torch.tensor([1]), torch.tensor([0.5]))
    empty = torch.tensor([], dtype=torch.int64)
    with pytest.raises(ValueError, match="no samples"):
        binary_metrics(empty, empty, empty.float())


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
        min_size=2,
        max_size=30,
    )
)
def test_roc_auc_equals_the_fraction_of_correctly_ordered_pairs(
    rows: list[tuple[bool, float]],
) -> None:
    """AUC = P(positive scores higher than negative) + P(tie) / 2, over all pairs."""
    positives = [score for label, score in rows if label]
    negatives = [score for label, score in rows if not label]
    labels = torch.tensor([int(label) for label, _ in rows])
    scores = torch.tensor([score for _, score in rows])
    auc = roc_auc(labels, scores)
    if not positives or not negatives:
        assert math.isnan(auc)
        return
    wins = sum(
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(positives, negatives)
    )
    assert auc == pytest.approx(wins / (len(positives) * len(negatives)))
