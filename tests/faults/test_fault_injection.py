"""Every file operation of save, CheckpointManager.save, migrate, FailureLedger.record
and cleanup, failed in turn with every fault class (docs/ckptkit/reliability.md).

For each scenario a fault-free run is recorded first; then, for each fault class
and each call point it applies to (the k-th call of one operation), a fresh
folder is built, the call is run with that one call failing, and the scenario's
promise is checked: a documented error (or, for EINTR and short writes, success),
the old file byte-identical unless the new one was renamed into place, no
temporary file that ``cleanup`` does not remove, only whole ledger lines.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest

from ..support.limits import time_limit
from .scenarios import SCENARIOS, PromiseBrokenError, Scenario
from .seam import FAULTS, Call, Fault, Injector, call_points, injected

# Generous: a case takes milliseconds; a hang (a lock never released) fails it.
_CASE_LIMIT_S = 60


@cache
def _points(scenario: Scenario) -> tuple[Call, ...]:
    with tempfile.TemporaryDirectory() as folder:
        case = scenario.setup(Path(folder))
        return tuple(call_points(lambda: scenario.action(case)))


def _run_case(scenario: Scenario, fault: Fault, point: Call, root: Path) -> str | None:
    """Run one case; return what went wrong, or None."""
    with tempfile.TemporaryDirectory(dir=root) as folder, time_limit(_CASE_LIMIT_S):
        case = scenario.setup(Path(folder))
        injector = Injector(target=(point.name, point.index), fault=fault)
        error: BaseException | None = None
        with injected(injector):
            try:
                scenario.action(case)
            except Exception as raised:  # noqa: BLE001 - judged by the check
                error = raised
        where = f"{scenario.name}: {fault.name} at {point}"
        if injector.hit is None:
            return f"{where}: the call was never reached (the run changed)"
        if fault.must_succeed and error is not None:
            return f"{where}: raised {type(error).__name__}: {error}"
        try:
            scenario.check(case, injector, error)
        except PromiseBrokenError as broken:
            return f"{where}: {broken} (call raised {error!r})"
        except Exception as failed:  # noqa: BLE001 - a check that cannot even read
            return f"{where}: checking failed: {failed!r} (call raised {error!r})"
    return None


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_fault_at_every_call_point_keeps_the_promise(
    scenario: Scenario, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    points = _points(scenario)
    assert scenario.operations <= {p.name for p in points}, "recording saw too little"
    failures: list[str] = []
    cases = 0
    for fault in FAULTS:
        for point in points:
            if fault.applies_to(point.name):
                cases += 1
                problem = _run_case(scenario, fault, point, tmp_path)
                if problem is not None:
                    failures.append(problem)
    record_property("cases:fault injection", cases)
    assert failures == []
