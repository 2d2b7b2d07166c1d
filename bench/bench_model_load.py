"""Time to load each demo encoder in a fresh process (what every predict run pays).

Run: python bench/bench_model_load.py [--repeats 5] [--before-src /tmp/before/src]

Writes the demo models once, then loads each encoder (``load_encoder``, CPU, fp32)
in a fresh Python process ``--repeats`` times and prints the median seconds of the
load alone (``torch`` and the encoder modules imported before the clock starts). With
``--before-src`` (the ``src/`` folder of another checkout, e.g. ``git worktree add
/tmp/before main``) the same loads run with that code through ``PYTHONPATH``,
interleaved with this tree's, and the ratios after / before are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from virnucpro_app.demo import make_demo_models

SRC = Path(__file__).resolve().parents[1] / "src"
#: Loads one encoder and prints the seconds the load took.
LOAD = r"""
import sys, time, warnings
import virnucpro_app.models.dnabert, virnucpro_app.models.esm2  # imports off the clock
from virnucpro_app.models import load_encoder
warnings.simplefilter("ignore")
start = time.perf_counter()
load_encoder(sys.argv[1], sys.argv[2], device="cpu", precision="fp32")
print(time.perf_counter() - start)
"""


def _load_seconds(src: Path, kind: str, model: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", LOAD, kind, str(model)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse the options, time the loads, print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before-src", type=Path, default=None)
    args = parser.parse_args()
    trees = {"after": SRC}
    if args.before_src is not None:
        trees = {"before": args.before_src.resolve(), **trees}
    with tempfile.TemporaryDirectory() as tmp:
        demo = make_demo_models(tmp)
        models = {"dnabert": demo.dnabert_dir, "esm": demo.esm_path}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for kind, model in models.items():
                for name, src in trees.items():
                    seconds = _load_seconds(src, kind, model)
                    times.setdefault((name, kind), []).append(seconds)
    for kind in models:
        medians = {name: statistics.median(times[name, kind]) for name in trees}
        line = "  ".join(f"{name} {value:.3f} s" for name, value in medians.items())
        if "before" in medians:
            line += f"  after/before {medians['after'] / medians['before']:.3f}x"
        print(f"{kind:8} load (median of {args.repeats}): {line}")


if __name__ == "__main__":
    main()
