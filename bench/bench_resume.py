"""Resume time of a finished predict run (demo models, CPU), optionally before/after.

Run: python bench/bench_resume.py [--frames 10000] [--shard-size 1000] [--repeats 3]
                                  [--before-src /tmp/i15-before/src]

Makes a demo input of about ``--frames`` kept frames (model type 300), runs
``virnucpro-app predict`` on it to the end, then resumes the finished run
``--repeats`` times and prints the wall time of each resume (start-up included)
and the median. With ``--before-src`` (the ``src/`` folder of another checkout of
this repository, e.g. ``git worktree add /tmp/i15-before main``), the same is done
with that code (through ``PYTHONPATH``, in its own run folder, resumes
interleaved with this checkout's) and the ratio of the two medians is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_predict import write_input as write_contigs

from virnucpro_app.demo import make_demo_models
from virnucpro_app.fasta import read_records
from virnucpro_app.prepare import prepare_records

MODEL_TYPE = 300


def _frames(path: Path) -> int:
    batches = prepare_records(read_records([path]), chunk_size_bp=MODEL_TYPE)
    return sum(len(batch.frame_ids) for batch in batches)


def write_input(path: Path, frames: int) -> int:
    """bench_predict's coding-rich contigs, as many as give ``frames`` kept frames."""
    records = 20
    while True:
        write_contigs(path, records)
        kept = _frames(path)
        if kept >= frames:
            return kept
        records = int(records * frames / max(kept, 1)) + 1


def _predict(
    src: Path | None, inputs: Path, output: Path, cache: Path, *extra: str
) -> float:
    env = {**os.environ, "VIRNUCPRO_DEMO_CACHE": str(cache), "OMP_NUM_THREADS": "2"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [
        sys.executable,
        "-m",
        "virnucpro_app",
        "predict",
        str(inputs),
        "--demo",
        "--model-type",
        str(MODEL_TYPE),
        "--output-dir",
        str(output),
        "--no-progress",
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"predict failed ({result.returncode}): {result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--shard-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-src", type=Path, default=None)
    args = parser.parse_args()
    versions: dict[str, Path | None] = {"this checkout": None}
    if args.before_src is not None:
        versions = {"before": args.before_src.resolve(), **versions}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = root / "demo"
        make_demo_models(cache)
        (cache / ".complete").write_text("")
        inputs = root / "contigs.fa"
        frames = write_input(inputs, args.frames)
        print(f"input: {frames} frames, {inputs.stat().st_size / 1e6:.2f} MB")
        shards = ("--shard-size", str(args.shard_size))
        outputs = {name: root / f"run-{i}" for i, name in enumerate(versions)}
        for name, src in versions.items():
            elapsed = _predict(src, inputs, outputs[name], cache, *shards)
            summary = json.loads((outputs[name] / "run_summary.json").read_text())
            print(f"{name}: full run {elapsed:.1f} s, {summary['shards']} shards")
        times: dict[str, list[float]] = {name: [] for name in versions}
        for _ in range(args.repeats):
            for name, src in versions.items():
                times[name].append(
                    _predict(src, inputs, outputs[name], cache, *shards, "--resume")
                )
        for name, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(
                f"{name}: resume of the finished run {statistics.median(values):.2f} s "
                f"median ({shown})"
            )
        if len(times) == 2:
            before, after = (statistics.median(v) for v in times.values())
            print(f"resume time before / after: {before / after:.2f}x")


if __name__ == "__main__":
    main()
