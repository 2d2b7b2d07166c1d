"""Which steps a ``CheckpointManager`` keeps: a pure rule over step records.

Kept after step ``new`` is durable and validated: the ``keep_last`` highest steps,
the ``keep_best`` best by one metric, and ``new`` itself (it may be lower than
older steps after a restore fell back past a damaged one). Everything else goes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ckptkit._file.format import STEP_METADATA_METRICS, STEP_METADATA_STEP

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

Mode = Literal["min", "max"]
MetricValue = int | float

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass(frozen=True)
class StepRecord:
    """One step file that passed quick validation, as its header describes it."""

    step: int
    path: Path
    status: str
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    schema: str | None = None


@dataclass(frozen=True)
class RetentionRule:
    """Which steps survive: the ``keep_last`` highest, the ``keep_best`` best.

    Raises:
        ValueError: ``keep_last < 1``, ``keep_best < 0``, ``keep_best`` without
            ``best_metric``, or a ``mode`` other than ``"min"``/``"max"``.
    """

    keep_last: int
    keep_best: int
    best_metric: str | None
    mode: Mode

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            msg = (
                "keep_last must be >= 1 (the newest step is always kept), "
                f"not {self.keep_last}"
            )
            raise ValueError(msg)
        if self.keep_best < 0:
            msg = f"keep_best must be >= 0, not {self.keep_best}"
            raise ValueError(msg)
        if self.keep_best and self.best_metric is None:
            msg = "keep_best needs best_metric, the metric that ranks steps"
            raise ValueError(msg)
        if self.mode not in ("min", "max"):
            msg = f"mode must be 'min' or 'max', not {self.mode!r}"
            raise ValueError(msg)


def _metric_fix(value: object) -> str:
    """What to do with a metric value that is not a real number."""
    if value is None:
        return "leave the metric out of metrics= (or pass float('nan'))"
    if isinstance(value, bool):
        return "pass int(value) or float(value)"
    if hasattr(value, "item"):  # a tensor or an array: one number inside
        return "pass value.item() (a one-element tensor or array)"
    if isinstance(value, (str, bytes)):
        return "pass float(value)"
    if isinstance(value, numbers.Complex):
        return "pass a real number (abs(value) or value.real)"
    return "pass an int or a float"


def check_metrics(metrics: Mapping[str, object] | None) -> dict[str, MetricValue]:
    """Return ``metrics`` as plain numbers, or raise for anything else.

    Raises:
        TypeError: ``metrics`` is not a mapping, a key is not a str, or a value
            is not a real number; the message names the metric and the fix.
    """
    given: object = metrics  # typed callers pass a mapping; untyped ones may not
    if given is not None and not isinstance(given, Mapping):
        msg = (
            f"metrics must be a dict of name -> number, not {type(given).__name__}"
            " (e.g. metrics={'val_loss': 0.25})"
        )
        raise TypeError(msg)
    checked: dict[str, MetricValue] = {}
    for key, value in (metrics or {}).items():
        name: object = key  # typed callers pass str; untyped ones may not
        if not isinstance(name, str):
            msg = (
                f"metric names must be str, not {type(name).__name__} ({name!r}): "
                f"pass str({name!r})"
            )
            raise TypeError(msg)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            msg = (
                f"metric {key!r} must be a real number, not "
                f"{type(value).__name__}: {_metric_fix(value)}"
            )
            raise TypeError(msg)
        checked[key] = (
            int(value) if isinstance(value, numbers.Integral) else float(value)
        )
    return checked


def metrics_to_json(metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
    """Metrics as stored in the header: non-finite floats become strings."""
    return {
        key: value if math.isfinite(value) else str(value)
        for key, value in metrics.items()
    }


def step_metadata(step: int, metrics: Mapping[str, object] | None) -> dict[str, Any]:
    """A step's header metadata: its number, and its metrics (``check_metrics``)."""
    return {
        STEP_METADATA_STEP: step,
        STEP_METADATA_METRICS: metrics_to_json(check_metrics(metrics)),
    }


def metrics_from_json(data: object) -> dict[str, MetricValue]:
    """Read stored metrics back; entries of any other shape are ignored."""
    if not isinstance(data, dict):
        return {}
    metrics: dict[str, MetricValue] = {}
    for key, value in data.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[str(key)] = value
        elif isinstance(value, str) and value in _NON_FINITE:
            metrics[str(key)] = _NON_FINITE[value]
    return metrics


def _rank_key(record: StepRecord, metric: str, mode: Mode) -> tuple[bool, float, int]:
    value = float(record.metrics[metric])
    # NaN ranks last in both modes (and, comparing unequal to itself, must not
    # reach the tuple comparison); among equal values the newer step wins.
    if math.isnan(value):
        return (True, 0.0, -record.step)
    return (False, value if mode == "min" else -value, -record.step)


def best_steps(
    records: Iterable[StepRecord], metric: str | None, mode: Mode, count: int
) -> list[int]:
    """The ``count`` best steps by ``metric``, best first; unscored steps never rank."""
    if metric is None or count <= 0:
        return []
    scored = [r for r in records if metric in r.metrics]
    scored.sort(key=lambda r: _rank_key(r, metric, mode))
    return [r.step for r in scored[:count]]


def steps_to_delete(
    records: Iterable[StepRecord], *, new_step: int, rule: RetentionRule
) -> list[int]:
    """Steps to delete once ``new_step`` is durable and validated, oldest first."""
    records = list(records)
    steps = sorted(r.step for r in records)
    keep = set(steps[-rule.keep_last :])
    keep.update(best_steps(records, rule.best_metric, rule.mode, rule.keep_best))
    keep.add(new_step)
    return [step for step in steps if step not in keep]
