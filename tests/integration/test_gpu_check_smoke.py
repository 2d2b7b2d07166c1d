"""``bench/gpu_check.py --smoke``: every part of the prepared GPU check runs, reports.

The real check needs a GPU (docs/app/models.md); this runs the same parts at toy
sizes on whatever machine runs the tests, so the script a GPU session will run
once is known to work end to end. Without CUDA, what only a GPU can measure must
be reported as skipped, never as a figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = {
    "env",
    "models",
    "correctness",
    "predict",
    "checkpoint",
    "throughput",
    "profile",
    "oom",
}
CUDA_ONLY = {
    "bf16 matmul ceiling",
    "ESM-2 ours bf16 MFU >= 50 %",
    "async blocked / sync <= 0.05 with pinned staging",
    "pinned host memory while the manager is open",
    "pinned host memory after close()",
    "GPU busy share and kernel classes",
    "out-of-memory back-off",
}


def test_smoke_run_reports_every_part_and_skips_what_needs_cuda(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--smoke", "--profile"],
        cwd=ROOT,
        env={**os.environ, "OUT": str(out), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    finished = {r["part"] for r in records if r["kind"] == "done"}
    assert finished == PARTS
    for part in PARTS:
        kinds = {r["kind"] for r in records if r["part"] == part}
        assert kinds & {"check", "figure", "info", "skip"}, f"{part}: no result"
    checks = [r for r in records if r["kind"] == "check"]
    assert checks
    assert all(r["ok"] for r in checks)
    device = next(r["value"] for r in records if r["name"] == "device")
    if device.startswith("CPU"):
        skipped = {r["name"]: r["detail"] for r in records if r["kind"] == "skip"}
        assert set(skipped) >= CUDA_ONLY
        assert all(skipped[name] == "skipped: no CUDA" for name in CUDA_ONLY)
        assert not [r for r in records if r["kind"] == "goal"]
        assert not [r for r in records if "MFU" in str(r.get("detail", ""))]
    summary = (out / "summary.txt").read_text()
    assert f"{len(checks)}/{len(checks)} checks passed" in summary
    assert (out / "gpu_check.log").stat().st_size > 0
    assert (out / "profile.txt").stat().st_size > 0
