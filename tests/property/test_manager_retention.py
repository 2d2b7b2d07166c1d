"""CheckpointManager retention, run beside a simple model of the rule.

The model states the rule in its own words: a step survives a save if it is the
step just saved, one of the ``keep_last`` highest, or one that fewer than
``keep_best`` other steps beat (lower/higher metric by ``mode``; NaN loses to
every number; on a tie the newer step wins; steps without the metric never rank).
The machine saves (sync or async), restarts the manager on the same folder, and
compares ``steps``/``latest``/``best`` with the model after every rule.

Beside the manager's steps it puts files the manager did not write, named like
steps (issue 12, folder boundaries): a plain torch file, a ckptkit file without
step metadata, a symbolic link to a file outside the folder, and another
schema's step. They must never be deleted or changed and never count toward
``keep_last``; another schema's step is listed (restore refuses it) but never
ranks. It also removes, garbles or rolls back the step index between restarts:
the folder must stay the truth.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path

import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import ckptkit
from ckptkit._file.format import MANAGER_LOCK_FILENAME, STEP_INDEX_FILENAME

_FOREIGN_KINDS = ("torch", "no_step_metadata", "symlink", "other_schema")
# Far above the steps the machine saves: the names never collide.
_FOREIGN_BASE = 1000

_METRICS = st.one_of(
    st.none(),
    st.sampled_from([0.0, 1.0, 2.0, -1.0, math.inf, math.nan]),
    st.floats(-10, 10, allow_nan=False),
)


def _beats(
    mine: float, theirs: float, mode: str, my_step: int, their_step: int
) -> bool:
    """Whether a step with metric ``mine`` ranks before one with ``theirs``."""
    if math.isnan(mine) or math.isnan(theirs):
        return (not math.isnan(mine)) or (math.isnan(theirs) and my_step > their_step)
    if mine == theirs:
        return my_step > their_step
    return mine < theirs if mode == "min" else mine > theirs


class RetentionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.directory = Path(self._tmp.name)
        self.model: dict[int, float | None] = {}
        self.options: dict[str, object] = {}
        self.mgr: ckptkit.CheckpointManager | None = None
        self.outside = Path(self._tmp.name + "-outside")
        self.outside.mkdir()
        # name -> (kind, digest of the bytes it must keep)
        self.foreign: dict[str, tuple[str, str]] = {}
        self.saved_index: bytes | None = None

    @initialize(
        keep_last=st.integers(1, 3),
        keep_best=st.integers(0, 2),
        mode=st.sampled_from(["min", "max"]),
        async_save=st.booleans(),
    )
    def start(
        self, keep_last: int, keep_best: int, mode: str, async_save: bool
    ) -> None:
        self.options = {
            "keep_last": keep_last,
            "keep_best": keep_best,
            "best_metric": "score",
            "mode": mode,
            "async_save": async_save,
        }
        self.mgr = ckptkit.CheckpointManager(self.directory, **self.options)  # type: ignore[arg-type]

    def _kept(self, new_step: int) -> set[int]:
        keep_last = int(self.options["keep_last"])  # type: ignore[call-overload]
        keep_best = int(self.options["keep_best"])  # type: ignore[call-overload]
        mode = str(self.options["mode"])
        steps = sorted(self.model)
        kept = {new_step, *steps[max(0, len(steps) - keep_last) :]}
        scored = {s: v for s, v in self.model.items() if v is not None}
        for step, value in scored.items():
            rivals = sum(
                _beats(other, value, mode, other_step, step)
                for other_step, other in scored.items()
                if other_step != step
            )
            if rivals < keep_best:
                kept.add(step)
        return kept

    def _model_best(self) -> int | None:
        mode = str(self.options["mode"])
        scored = {s: v for s, v in self.model.items() if v is not None}
        for step, value in scored.items():
            if not any(
                _beats(other, value, mode, other_step, step)
                for other_step, other in scored.items()
                if other_step != step
            ):
                return step
        return None

    def _save(self, step: int, metric: float | None) -> None:
        assert self.mgr is not None
        metrics = None if metric is None else {"score": metric}
        self.mgr.save(step, {"step": step}, metrics=metrics)
        self.mgr.wait()
        self.model[step] = metric
        kept = self._kept(step)
        self.model = {s: v for s, v in self.model.items() if s in kept}

    @rule(gap=st.integers(1, 3), metric=_METRICS)
    def save_next(self, gap: int, metric: float | None) -> None:
        self._save(max(self.model, default=-1) + gap, metric)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), metric=_METRICS)
    def save_again_or_lower(self, data: st.DataObject, metric: float | None) -> None:
        """Re-save a kept step, or one below the newest (as after a fallback)."""
        step = data.draw(st.integers(0, max(self.model)))
        self._save(step, metric)

    @rule()
    def restart(self) -> None:
        assert self.mgr is not None
        self.mgr.close()
        self.mgr = ckptkit.CheckpointManager(self.directory, **self.options)  # type: ignore[arg-type]

    @rule(kind=st.sampled_from(_FOREIGN_KINDS))
    def put_a_foreign_file(self, kind: str) -> None:
        """A file named like a step that the manager did not write."""
        step = _FOREIGN_BASE + len(self.foreign)
        path = self.directory / f"step-{step:012d}.ckpt"
        if kind == "torch":
            torch.save({"w": torch.ones(2)}, path)
        elif kind == "no_step_metadata":
            ckptkit.save(path, {"w": torch.ones(2)})
        elif kind == "symlink":
            target = self.outside / f"target-{step}.ckpt"
            ckptkit.save(target, {"w": torch.ones(2)}, metadata={"step": step})
            path.symlink_to(target)
        else:
            ckptkit.save(path, {"w": 1}, schema="other", metadata={"step": step})
        self.foreign[path.name] = (kind, _digest(path))

    @rule(how=st.sampled_from(["remove", "garble", "roll_back", "remember"]))
    def tamper_with_the_index(self, how: str) -> None:
        """Between two managers, the index goes missing, bad, or out of date."""
        assert self.mgr is not None
        self.mgr.close()
        index = self.directory / STEP_INDEX_FILENAME
        if how == "remember" and index.exists():
            self.saved_index = index.read_bytes()
        elif how == "remove":
            index.unlink(missing_ok=True)
        elif how == "garble" and index.exists():
            index.write_bytes(index.read_bytes()[:-7] + b"garbage")
        elif how == "roll_back" and self.saved_index is not None:
            index.write_bytes(self.saved_index)
        self.mgr = ckptkit.CheckpointManager(self.directory, **self.options)  # type: ignore[arg-type]

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.mgr is None:
            return
        other_schema = sorted(
            int(name[5:17])
            for name, (kind, _) in self.foreign.items()
            if kind == "other_schema"
        )
        assert self.mgr.steps() == sorted(self.model) + other_schema
        assert self.mgr.latest() == max([*self.model, *other_schema], default=None)
        assert self.mgr.best() == self._model_best()
        names = sorted(p.name for p in self.directory.iterdir())
        steps = [f"step-{s:012d}.ckpt" for s in sorted(self.model)]
        own = {MANAGER_LOCK_FILENAME, STEP_INDEX_FILENAME}
        assert MANAGER_LOCK_FILENAME in names
        assert set(names) - set(steps) - set(self.foreign) <= own
        assert [n for n in names if n.startswith("step-")] == sorted(
            steps + list(self.foreign)
        )
        for name, (kind, digest) in self.foreign.items():
            path = self.directory / name
            assert path.is_symlink() == (kind == "symlink")
            assert _digest(path) == digest, f"{kind} file {name} changed"

    def teardown(self) -> None:
        try:
            if self.mgr is not None:
                self.mgr.close()
            assert not (self.directory / MANAGER_LOCK_FILENAME).exists()
        finally:
            self._tmp.cleanup()
            for path in self.outside.iterdir():
                path.unlink()
            self.outside.rmdir()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


RetentionMachine.TestCase.settings = settings(
    RetentionMachine.TestCase.settings,
    stateful_step_count=12,
)
TestRetention = RetentionMachine.TestCase
