"""GPU check part ``predict``: the CLI end to end with real-size models, killed and resumed.

Three runs of ``python -m virnucpro_app predict`` (the ``virnucpro-app`` console
script's entry point) on the same coding-rich contigs, ``--device auto`` and
``--precision auto`` (bf16 on a GPU):

1. uninterrupted: the reference outputs, the stage split from its
   ``run_summary.json``, and the GPU's utilisation sampled by ``nvidia-smi``
   every 200 ms while it runs (start-up and model loading included);
2. the same, SIGKILLed as soon as an ESM-2 checkpoint of a shard exists (the kill
   lands inside the ESM-2 stage: the shard's embeddings are saved slice by slice);
3. ``--resume`` of run 2: must exit 0, compute only the ESM-2 frames not saved
   before the kill, and write outputs equal to run 1's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench_predict import write_input

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from _gpu_plan import Context, ModelFiles, Plan
    from _gpu_report import Recorder

_POLL_S = 0.05


def _command(plan: Plan, files: ModelFiles, inputs: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "virnucpro_app",
        "predict",
        str(inputs),
        "--output-dir",
        str(output),
        "--dnabert",
        str(files.dnabert),
        "--esm",
        str(files.esm),
        "--classifier",
        str(files.classifier),
        "--model-type",
        "500",
        "--shard-size",
        str(plan.shard_size),
        "--slice-size",
        str(plan.slice_size),
        "--no-progress",
        "--quiet",
        "--resume",
    ]


def _environment(plan: Plan) -> dict[str, str]:
    # Smoke runs: one thread, as the part itself (see gpu_check._run_parts).
    return {**os.environ, **({"OMP_NUM_THREADS": "1"} if plan.smoke else {})}


def _run(command: list[str], log: Path, env: dict[str, str]) -> tuple[int, float]:
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(
            command, stdout=handle, stderr=handle, env=env, check=False
        )
    return done.returncode, time.perf_counter() - start


@contextlib.contextmanager
def _gpu_samples(path: Path) -> Iterator[None]:
    """Sample utilisation and memory with ``nvidia-smi -lms 200`` into ``path``."""
    if shutil.which("nvidia-smi") is None:
        yield
        return
    query = "--query-gpu=utilization.gpu,memory.used"
    with path.open("w") as handle:
        sampler = subprocess.Popen(
            ["nvidia-smi", query, "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=handle,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            sampler.terminate()
            sampler.wait()


def _record_utilisation(rec: Recorder, path: Path) -> None:
    if not path.exists():
        rec.skip("GPU utilisation during predict", "skipped: nvidia-smi not found")
        return
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(tuple(float(x) for x in line.split(",")))
    if not rows:
        rec.skip("GPU utilisation during predict", "skipped: no samples")
        return
    busy = [u for u, _ in rows if u > 0]
    rec.figure(
        "GPU utilisation during predict (nvidia-smi)",
        round(sum(u for u, _ in rows) / len(rows), 1),
        "% mean",
        f"{len(rows)} samples incl. start-up; {sum(busy) / max(1, len(busy)):.0f} % "
        f"while busy; max memory {max(m for _, m in rows):.0f} MiB",
    )


def _kill_in_esm(
    command: list[str], output: Path, log: Path, env: dict[str, str]
) -> tuple[bool, float]:
    """Start a run and SIGKILL it once an ESM-2 checkpoint exists."""
    start = time.perf_counter()
    with log.open("w") as handle:
        child = subprocess.Popen(command, stdout=handle, stderr=handle, env=env)
        while child.poll() is None:
            if any((output / "checkpoints").glob("shard-*.esm.ckpt")):
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True, time.perf_counter() - start
            time.sleep(_POLL_S)
    return False, time.perf_counter() - start


def _saved_esm(output: Path) -> tuple[int, list[str]]:
    """Frames in the ESM-2 checkpoints left by the killed run, and their states."""
    frames, states = 0, []
    for path in sorted((output / "checkpoints").glob("shard-*.esm.ckpt")):
        info = ckptkit.inspect(path)
        rows = next(t.shape[0] for t in info.tensors if t.name == "embeddings")
        frames += rows
        states.append(f"{path.name}: {info.status}, {rows} frames")
    return frames, states


def _same_outputs(a: Path, b: Path) -> tuple[bool, str]:
    rows = {}
    for name, folder in (("a", a), ("b", b)):
        lines = (folder / "prediction_results.txt").read_text().splitlines()[1:]
        rows[name] = [line.split("\t") for line in lines]
    if [r[:2] for r in rows["a"]] != [r[:2] for r in rows["b"]]:
        return False, "frame IDs or labels differ"
    diff = max(
        (
            abs(float(x) - float(y))
            for ra, rb in zip(rows["a"], rows["b"], strict=True)
            for x, y in zip(ra[2:], rb[2:], strict=True)
        ),
        default=0.0,
    )
    consensus = "prediction_results_highestscore.csv"
    same = (a / consensus).read_bytes() == (b / consensus).read_bytes()
    identical = all(
        (a / n).read_bytes() == (b / n).read_bytes()
        for n in ("prediction_results.txt", consensus)
    )
    detail = f"{len(rows['a'])} frames, max |score diff| {diff:.1e}, "
    detail += "byte-identical" if identical else "not byte-identical"
    return same and diff <= 1e-6, detail


def _stage_split(rec: Recorder, summary: dict, wall_s: float) -> None:
    stages = summary["stage_seconds"]
    split = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
    rec.figure(
        "predict stage split (s)",
        round(summary["wall_seconds"], 1),
        "s in run_predict",
        f"{split}; {wall_s:.1f} s with start-up; model loading is inside the first "
        "shard's dnabert/esm time",
    )
    frames = summary["frames"]
    rec.figure(
        "predict frames/s (whole process)", round(frames / wall_s, 1), "frames/s"
    )


def _exited_ok(
    rec: Recorder, label: str, outcome: tuple[int, float], log: Path
) -> bool:
    code, seconds = outcome
    rec.check(f"{label} exits 0", code, ok=code == 0, detail=f"{seconds:.1f} s")
    if code != 0:
        rec.info("log tail", log.read_text()[-2000:])
    return code == 0


def run_predict(rec: Recorder, ctx: Context) -> None:
    """The part: see the module docstring."""
    plan, files, root = ctx.plan, ctx.files, ctx.workdir / "predict"
    root.mkdir(parents=True, exist_ok=True)
    inputs = root / "contigs.fa"
    write_input(inputs, plan.predict_records)
    whole, killed = root / "whole", root / "killed"
    env = _environment(plan)
    with _gpu_samples(root / "nvidia-smi.csv"):
        code, wall_s = _run(
            _command(plan, files, inputs, whole), root / "whole.log", env
        )
    if not _exited_ok(rec, "uninterrupted run", (code, wall_s), root / "whole.log"):
        return
    summary = json.loads((whole / "run_summary.json").read_text())
    rec.info("predict device", f"{summary['device']}, precision {summary['precision']}")
    _stage_split(rec, summary, wall_s)
    _record_utilisation(rec, root / "nvidia-smi.csv")
    landed, after_s = _kill_in_esm(
        _command(plan, files, inputs, killed), killed, root / "killed.log", env
    )
    saved, states = _saved_esm(killed)
    rec.check(
        "SIGKILL landed in the ESM-2 stage",
        int(landed),
        ok=landed,
        detail=f"after {after_s:.1f} s; " + "; ".join(states),
    )
    code, resume_s = _run(
        _command(plan, files, inputs, killed), root / "resume.log", env
    )
    if not _exited_ok(rec, "--resume", (code, resume_s), root / "resume.log"):
        return
    resumed = json.loads((killed / "run_summary.json").read_text())
    computed = resumed["computed_frames"].get("esm", 0)
    expected = summary["frames"] - saved
    rec.check(
        "resume computed only the ESM-2 frames not saved before the kill",
        computed,
        ok=computed == expected,
        detail=f"{saved} saved, {summary['frames']} frames in all, expected {expected}",
    )
    ok, detail = _same_outputs(whole, killed)
    rec.check(
        "resumed outputs equal the uninterrupted run's", int(ok), ok=ok, detail=detail
    )
