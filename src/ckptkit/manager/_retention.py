"""Which steps a ``CheckpointManager`` keeps: a pure rule over step records.

Kept after step ``new`` is durable and validated: the ``keep_last`` highest steps,
the ``keep_best`` best by one metric, and ``new`` itself (it may be lower than
older steps after a restore fell back past a damaged one). Everything else goes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
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


def check_metrics(metrics: Mapping[str, object] | None) -> dict[str, MetricValue]:
    """Return ``metrics`` as plain numbers, or raise for anything else.

    Raises:
        TypeError: A key that is not a str or a value that is not a real number
            (a tensor must be converted with ``.item()`` first).
    """
    checked: dict[str, MetricValue] = {}
    for key, value in (metrics or {}).items():
        name: object = key  # typed callers pass str; untyped ones may not
        if not isinstance(name, str):
            msg = f"metric names must be str, not {type(name).__name__} ({name!r})"
            raise TypeError(msg)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            msg = (
                f"metric {key!r} must be a real number, not {type(value).__name__}"
                " (use .item() on a tensor)"
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


def metrics_from_json(data: object) -> dict[str, MetricValue]:
    """Read stored metrics back; entries of any other shape are ignored."""
    if not isinstance(data, dict):
        return {}
    metrics: dict[str, MetricValue] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
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


def steps_to_delete(  # noqa: PLR0913 - the whole rule in one call
    records: Iterable[StepRecord],
    *,
    new_step: int,
    keep_last: int,
    keep_best: int,
    best_metric: str | None,
    mode: Mode,
) -> list[int]:
    """Steps to delete once ``new_step`` is durable and validated, oldest first."""
    records = list(records)
    steps = sorted(r.step for r in records)
    keep = set(steps[-keep_last:]) if keep_last > 0 else set()
    keep.update(best_steps(records, best_metric, mode, keep_best))
    keep.add(new_step)
    return [step for step in steps if step not in keep]
