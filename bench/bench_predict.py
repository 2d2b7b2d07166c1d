"""End-to-end predict throughput with the demo models on CPU, and CPU scaling.

Run: python bench/bench_predict.py [--records 300] [--nproc 1 2]
Prints records/s and frames/s of whole runs, the per-stage wall time from each
run's run_summary.json, and the speed-up of N torchrun processes (one thread
each) over one process with one thread, all measured in one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virnucpro_app.demo import make_demo_models

STOPS = {"TAA", "TAG", "TGA"}
CODONS = [
    a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in STOPS
]


def write_input(path: Path, records: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for index in range(records):
            length = rng.randint(1000, 5000)
            sequence = ""
            while len(sequence) < length:
                sequence += "ATG" + "".join(
                    rng.choice(CODONS) for _ in range(rng.randint(150, 500))
                )
                sequence += "TAA"
            handle.write(f">contig{index}\n{sequence[:length]}\n")


def run(
    nproc: int, threads: int, inputs: Path, output: Path, cache: Path
) -> tuple[float, dict]:
    args = [
        "predict",
        str(inputs),
        "--demo",
        "--output-dir",
        str(output),
        "--force",
        "--no-progress",
        "--quiet",
        "--shard-size",
        "500",
    ]
    env = {
        **os.environ,
        "VIRNUCPRO_DEMO_CACHE": str(cache),
        "OMP_NUM_THREADS": str(threads),
    }
    if nproc == 1:
        command = [sys.executable, "-m", "virnucpro_app", *args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "virnucpro_app",
            *args,
        ]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    return elapsed, json.loads((output / "run_summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = root / "demo"
        make_demo_models(cache)
        (cache / ".complete").write_text("")
        inputs = root / "contigs.fa"
        write_input(inputs, args.records)
        print(f"input: {args.records} records, {inputs.stat().st_size / 1e6:.1f} MB")
        base = None
        for nproc in args.nproc:
            elapsed, summary = run(nproc, 1, inputs, root / f"out{nproc}", cache)
            base = base or elapsed
            frames = summary["frames"]
            stages = ", ".join(
                f"{k} {v:.1f}s" for k, v in sorted(summary["stage_seconds"].items())
            )
            print(
                f"{nproc} process(es) x 1 thread: {elapsed:6.1f} s wall (incl. start-up), "
                f"{args.records / elapsed:6.1f} records/s, {frames / elapsed:7.1f} frames/s, "
                f"speed-up {base / elapsed:.2f}x; stages summed over ranks: {stages}"
            )
        elapsed, summary = run(1, 2, inputs, root / "out-threads", cache)
        print(
            f"1 process x 2 threads: {elapsed:6.1f} s wall, {args.records / elapsed:6.1f} records/s"
        )


if __name__ == "__main__":
    main()
