"""Binary classification metrics of one validation pass (virus = positive class).

Small and exact on purpose (no scikit-learn): counts from the confusion matrix,
and ROC AUC as the Mann-Whitney statistic with average ranks for tied scores,
which is the area under the ROC curve with ties drawn as diagonal segments.
A metric that is undefined for the data (AUC with one class only) is NaN;
precision, recall and F1 with a zero denominator are 0.0 (scikit-learn's
``zero_division=0``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class BinaryMetrics:
    """Quality of predictions against labels (positive = 1 = virus).

    Attributes:
        accuracy: Fraction of correct predictions.
        precision: TP / (TP + FP); 0.0 when nothing is predicted positive.
        recall: TP / (TP + FN); 0.0 when there is no positive label.
        f1: Harmonic mean of precision and recall; 0.0 when both are 0.
        roc_auc: Area under the ROC curve of the scores; NaN with one class only.
    """

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float

    def to_json(self) -> dict[str, float | None]:
        """The metrics as JSON values (NaN becomes None)."""
        return {k: None if math.isnan(v) else v for k, v in asdict(self).items()}


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def roc_auc(labels: torch.Tensor, scores: torch.Tensor) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative).

    Ties between a positive and a negative count one half.

    Args:
        labels: ``[N]`` 0/1 labels.
        scores: ``[N]`` scores, higher meaning "more likely positive".

    Returns:
        The AUC in [0, 1], or NaN when the labels hold only one class.

    Example:
        >>> roc_auc(torch.tensor([0, 0, 1, 1]), torch.tensor([0.1, 0.4, 0.35, 0.8]))
        0.75
    """
    truth = labels.detach().cpu().numpy().astype(bool)
    values = scores.detach().cpu().to(torch.float64).numpy()
    num_positive = int(truth.sum())
    num_negative = truth.size - num_positive
    if num_positive == 0 or num_negative == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    # Average rank (1-based) over each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    positive_rank_sum = float(ranks[truth].sum())
    u_statistic = positive_rank_sum - num_positive * (num_positive + 1) / 2
    return u_statistic / (num_positive * num_negative)


def binary_metrics(
    labels: torch.Tensor, predictions: torch.Tensor, scores: torch.Tensor
) -> BinaryMetrics:
    """Accuracy, precision, recall, F1 and ROC AUC of one set of predictions.

    Args:
        labels: ``[N]`` true labels, 0 (host/others) or 1 (virus).
        predictions: ``[N]`` predicted labels, 0 or 1.
        scores: ``[N]`` P(virus) (or any score ranking virus higher), for the AUC.

    Raises:
        ValueError: Inputs of different lengths, or no samples at all.

    Example:
        >>> m = binary_metrics(
        ...     torch.tensor([1, 1, 0, 0]),
        ...     torch.tensor([1, 0, 1, 0]),
        ...     torch.tensor([0.9, 0.4, 0.6, 0.2]),
        ... )
        >>> (m.accuracy, m.precision, m.recall, m.f1, m.roc_auc)
        (0.5, 0.5, 0.5, 0.5, 0.75)
    """
    if not labels.numel() == predictions.numel() == scores.numel():
        msg = (
            f"labels ({labels.numel()}), predictions ({predictions.numel()}) and "
            f"scores ({scores.numel()}) differ in length"
        )
        raise ValueError(msg)
    if labels.numel() == 0:
        msg = "no samples to compute metrics on"
        raise ValueError(msg)
    truth = labels.detach().cpu().reshape(-1).bool()
    guess = predictions.detach().cpu().reshape(-1).bool()
    true_positive = int((truth & guess).sum())
    false_positive = int((~truth & guess).sum())
    false_negative = int((truth & ~guess).sum())
    correct = int((truth == guess).sum())
    precision = _ratio(true_positive, true_positive + false_positive)
    recall = _ratio(true_positive, true_positive + false_negative)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryMetrics(
        accuracy=correct / truth.numel(),
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=roc_auc(truth, scores.reshape(-1)),
    )
