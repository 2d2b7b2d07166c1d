"""Results of the prepared GPU check: JSON lines written as they come, and the summary.

Every part of ``gpu_check.py`` runs in its own process and appends one JSON object
per result to ``WORKDIR/results.jsonl`` (so a part killed at its time limit keeps
what it measured), and prints the same result as a readable line. Kinds:

- ``check``: a pass/fail correctness criterion (a failure makes the exit code 1);
- ``goal``: a performance target from the issue (reported, never fails the run);
- ``figure``: a measurement (``value`` and ``unit``);
- ``info``: a fact about the machine or the run;
- ``skip``: not measured, with the reason (``skipped: no CUDA`` in smoke mode);
- ``start`` and ``done`` (written by the part's process at its start and end),
  ``status`` (written by the driver when a part timed out, crashed or got no
  time).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.jsonl"
#: Files copied to $OUT (the device tool brings back at most 8 files).
OUT_FILES = ("results.jsonl", "summary.txt", "gpu_check.log", "profile.txt")
NO_CUDA = "skipped: no CUDA"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings, keep everything else."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Recorder:
    """Appends one part's results to the shared JSON-lines file and prints them."""

    def __init__(self, workdir: Path, part: str) -> None:
        self.path = workdir / RESULTS_NAME
        self.part = part
        self.started = time.perf_counter()

    def _write(self, kind: str, name: str, **fields: Any) -> None:
        record = {"part": self.part, "kind": kind, "name": name}
        record.update({k: _clean(v) for k, v in fields.items()})
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(format_record(record), flush=True)

    def check(self, name: str, value: float, *, ok: bool, detail: str = "") -> None:
        self._write("check", name, value=value, ok=ok, detail=detail)

    def goal(self, name: str, value: float, *, ok: bool, detail: str = "") -> None:
        self._write("goal", name, value=value, ok=ok, detail=detail)

    def figure(
        self, name: str, value: float | None, unit: str = "", detail: str = ""
    ) -> None:
        self._write("figure", name, value=value, unit=unit, detail=detail)

    def info(self, name: str, value: object, detail: str = "") -> None:
        self._write("info", name, value=value, detail=detail)

    def skip(self, name: str, reason: str = NO_CUDA) -> None:
        self._write("skip", name, detail=reason)

    def start(self) -> None:
        """Written by the part's process first: a kill later means 'killed'."""
        self._write("start", "part started")

    def status(self, name: str, seconds: float) -> None:
        """Written by the driver for a part that did not finish by itself."""
        self._write("status", name, value=round(seconds, 1), unit="s")

    def done(self) -> None:
        seconds = time.perf_counter() - self.started
        self._write("done", "part finished", value=round(seconds, 1), unit="s")


def format_record(record: dict[str, Any]) -> str:
    """One readable line for a result."""
    kind, name = record["kind"], record["name"]
    value, detail = record.get("value"), record.get("detail", "")
    text = f"{value:,.8g}" if isinstance(value, float) else str(value)
    if record.get("unit"):
        text += f" {record['unit']}"
    tail = f"  ({detail})" if detail else ""
    if kind == "check":
        return f"  [{'PASS' if record['ok'] else 'FAIL'}] {name}: {text}{tail}"
    if kind == "goal":
        return f"  [goal {'met' if record['ok'] else 'NOT met'}] {name}: {text}{tail}"
    if kind == "skip":
        return f"  [skipped] {name}: {detail}"
    if kind in ("start", "done", "status"):
        return f"  == {record['part']}: {name} {text}{tail}"
    return f"  {name}: {text}{tail}"


def read_results(workdir: Path) -> list[dict[str, Any]]:
    """Every record written so far (a line cut by a kill is dropped)."""
    path = workdir / RESULTS_NAME
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def find(records: list[dict[str, Any]], name: str) -> Any:
    """The value of the last record called ``name`` (None if absent)."""
    values = [r.get("value") for r in records if r["name"] == name]
    return values[-1] if values else None


def summary_lines(records: list[dict[str, Any]], parts: list[str]) -> list[str]:
    """The final table: one row per part, then every check, goal and key figure."""
    lines = ["", "=" * 78, "GPU check summary", "=" * 78]
    for name in ("device", "torch", "CUDA", "driver", "bf16 matmul ceiling"):
        value = find(records, name)
        if value is not None:
            lines.append(f"{name}: {value}")
    lines.append("")
    lines.append(f"{'part':<13} {'state':<34} {'checks':>8} {'seconds':>8}")
    for part in parts:
        mine = [r for r in records if r["part"] == part]
        checks = [r for r in mine if r["kind"] == "check"]
        passed = sum(1 for r in checks if r["ok"])
        done = [r for r in mine if r["kind"] == "done"]
        status = [r for r in mine if r["kind"] == "status"]
        if done:
            state, seconds = "finished", f"{done[-1]['value']:.0f}"
        elif status:
            state, seconds = status[-1]["name"], str(status[-1].get("value", ""))
        else:
            state, seconds = "not run", ""
        count = f"{passed}/{len(checks)}" if checks else "-"
        lines.append(f"{part:<13} {state[:34]:<34} {count:>8} {seconds:>8}")
    lines.append("")
    lines.extend(
        f"[{record['part']}]" + format_record(record)
        for record in records
        if record["kind"] in ("check", "goal", "figure", "skip")
    )
    return lines


def verdict(records: list[dict[str, Any]], parts: list[str]) -> tuple[int, str]:
    """Exit code and a last line: 1 if a check failed or a part did not finish."""
    failed = [r["name"] for r in records if r["kind"] == "check" and not r["ok"]]
    unfinished = [
        p
        for p in parts
        if not any(r["part"] == p and r["kind"] == "done" for r in records)
    ]
    checks = [r for r in records if r["kind"] == "check"]
    line = f"{len(checks) - len(failed)}/{len(checks)} checks passed"
    if failed:
        line += f"; FAILED: {failed}"
    if unfinished:
        line += f"; parts not finished: {unfinished}"
    return (1 if failed or unfinished else 0), line


def copy_to_out(workdir: Path) -> None:
    """Copy the result files to $OUT when it is set (the device tool returns them)."""
    out = os.environ.get("OUT")
    if not out:
        return
    for name in OUT_FILES:
        source = workdir / name
        if source.exists():
            shutil.copyfile(source, Path(out) / name)
