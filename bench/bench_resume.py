"""Resume of a finished predict run (demo models, CPU): time, and checkpoint reads.

Run: python bench/bench_resume.py [--frames 10000] [--shard-size 1000] [--repeats 3]
                                  [--before-src /tmp/i15-before/src] [--workdir DIR]

Makes a demo input of about ``--frames`` kept frames (model type 300), runs
``virnucpro-app predict`` on it to the end, then resumes the finished run
``--repeats`` times. Each resume runs the app's entry point under a wrapper that
counts and times ``ckptkit.load`` and ``ckptkit.validate`` on the run's
checkpoints (the calls that read and checksum a file). Printed per code
version: the wall time of a resume (start-up included), the checkpoint reads,
the distinct files read and the seconds spent reading them (medians). With
``--before-src`` (the ``src/`` folder of another checkout, e.g. ``git worktree
add /tmp/i15-before main``) the same is done with that code (through
``PYTHONPATH``, its own run folder, resumes interleaved) and the ratios before
/ after are printed. ``--workdir`` keeps the runs, so a second invocation
resumes them without the full runs.
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
#: Runs the app with ckptkit's two readers counted and timed (checkpoints only).
WRAPPER = r"""
import atexit, json, sys, time
from pathlib import Path
import ckptkit

target = Path(sys.argv[1])
folder = Path(sys.argv[2]) / "checkpoints"
stats = {"reads": 0, "seconds": 0.0, "files": set()}

def timed(read):
    def wrapper(path, *args, **kwargs):
        start = time.perf_counter()
        try:
            return read(path, *args, **kwargs)
        finally:
            if Path(path).parent == folder:
                stats["reads"] += 1
                stats["seconds"] += time.perf_counter() - start
                stats["files"].add(str(path))
    return wrapper

ckptkit.load = timed(ckptkit.load)
ckptkit.validate = timed(ckptkit.validate)
def report():
    stats["files"] = len(stats["files"])
    target.write_text(json.dumps(stats))
atexit.register(report)
sys.argv = ["virnucpro-app", *sys.argv[3:]]
from virnucpro_app.cli import main
main()
"""


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
    src: Path | None, output: Path, args: list[str], stats: Path | None = None
) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    runner = ["-m", "virnucpro_app"]
    if stats is not None:
        runner = ["-c", WRAPPER, str(stats), str(output)]
    command = [sys.executable, *runner, "predict", *args, "--output-dir", str(output)]
    start = time.perf_counter()
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"predict failed ({result.returncode}): {result.stderr}")
    return elapsed


def _versions(before: Path | None) -> dict[str, Path | None]:
    versions: dict[str, Path | None] = {"after": None}
    if before is not None:
        versions = {"before": before.resolve(), **versions}
    return versions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--shard-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    versions = _versions(args.before_src)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        cache = root / "demo"
        if not (cache / ".complete").exists():
            make_demo_models(cache)
            (cache / ".complete").write_text("")
        os.environ["VIRNUCPRO_DEMO_CACHE"] = str(cache)
        inputs = root / "contigs.fa"
        if not inputs.exists():
            write_input(inputs, args.frames)
        print(f"input: {_frames(inputs)} frames, {inputs.stat().st_size / 1e6:.2f} MB")
        common = [str(inputs), "--demo", "--model-type", str(MODEL_TYPE)]
        common += ["--no-progress", "--quiet", "--shard-size", str(args.shard_size)]
        outputs = {name: root / f"run-{name}" for name in versions}
        for name, src in versions.items():
            if not (outputs[name] / "run_summary.json").exists():
                elapsed = _predict(src, outputs[name], common)
                print(f"{name}: full run {elapsed:.1f} s")
        walls: dict[str, list[float]] = {name: [] for name in versions}
        reads: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for _ in range(args.repeats):
            for name, src in versions.items():
                stats = root / f"stats-{name}.json"
                walls[name].append(
                    _predict(src, outputs[name], [*common, "--resume"], stats)
                )
                reads[name].append(json.loads(stats.read_text()))
        medians = {}
        for name in versions:
            wall = statistics.median(walls[name])
            count = statistics.median(r["reads"] for r in reads[name])
            files = statistics.median(r["files"] for r in reads[name])
            seconds = statistics.median(r["seconds"] for r in reads[name])
            medians[name] = (wall, count, seconds)
            shown = ", ".join(f"{w:.2f}" for w in walls[name])
            print(
                f"{name}: resume {wall:.2f} s wall median ({shown}); "
                f"{count:.0f} checkpoint reads of {files:.0f} files, "
                f"{seconds:.3f} s reading them"
            )
        if len(medians) == 2:  # before and after
            (w0, c0, s0), (w1, c1, s1) = medians.values()
            print(
                f"before / after: wall {w0 / w1:.2f}x, checkpoint reads {c0 / c1:.2f}x, "
                f"time reading checkpoints {s0 / s1:.2f}x"
            )


if __name__ == "__main__":
    main()
