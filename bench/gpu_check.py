"""Prepared GPU check: prove the CUDA path end to end and measure it, in one call.

Run (docs/app/models.md, "How to run the GPU check", has the device command):

    python bench/gpu_check.py --profile          # real sizes; needs CUDA; ~7 min
    python bench/gpu_check.py --smoke --profile  # toy sizes, any machine, seconds
    python bench/gpu_check.py --parts throughput,profile --workdir W --keep  # a rerun

Parts, each in its own process with its own time limit (a part that overruns is
killed with its children and the next one starts; a CUDA error cannot poison the
others), in this order:

- env: GPU, torch/CUDA/driver versions, a measured bf16 matmul ceiling, the peak
  and FLOP formula used for model FLOP utilisation (MFU);
- models: random-weight models at the published sizes (ESM-2 3B, DNABERT-S, the
  classifier) written by the project's demo builders in the real formats;
- correctness (``_gpu_correctness``): fp32 against fair-esm / one at a time,
  bf16 and fp16 against fp32 (cosine, classifier calls): the evidence for
  ``--precision auto``;
- predict (``_gpu_predict``): the CLI on the GPU, SIGKILL in the ESM-2 stage,
  ``--resume``, outputs equal; stage split and GPU utilisation;
- checkpoint (``_gpu_checkpoint``): ``CheckpointManager`` async vs sync with a
  state on the GPU, blocked time and byte-equal files;
- throughput, profile (``_gpu_throughput``): tokens/s and MFU of ESM-2 ours bf16
  vs fair-esm fp16, DNABERT-S vs one at a time; top kernels (``--profile``);
- oom (``_gpu_oom``): out-of-memory back-off.

Every result is a JSON line in ``WORKDIR/results.jsonl`` and a printed line; the
summary table comes last. With ``$OUT`` set, results.jsonl, summary.txt,
gpu_check.log and profile.txt are copied there after every part. Exit code: 0
when every check passed and every part finished, 1 otherwise, 2 when asked for
real sizes on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import IO

from _gpu_plan import LIMIT_S, MIN_PART_S, PARTS, SMOKE_LIMIT_S
from _gpu_report import (
    RESULTS_NAME,
    Recorder,
    copy_to_out,
    read_results,
    summary_lines,
    verdict,
)

NEEDS_MODELS = {"correctness", "predict", "throughput", "profile", "oom"}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes, any device")
    parser.add_argument("--profile", action="store_true", help="add the profile part")
    parser.add_argument("--parts", default="", help="comma-separated subset of parts")
    parser.add_argument("--budget-s", type=float, default=None, help="whole run")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--workdir", default=None, help="keeps the models for reruns")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


# ----------------------------------------------------------------- the parts
#: part -> (module, function); imported only when the part runs.
RUNNERS = {
    "env": ("_gpu_setup", "run_env"),
    "models": ("_gpu_setup", "run_models"),
    "correctness": ("_gpu_correctness", "run_correctness"),
    "predict": ("_gpu_predict", "run_predict"),
    "checkpoint": ("_gpu_checkpoint", "run_checkpoint"),
    "throughput": ("_gpu_throughput", "run_throughput"),
    "profile": ("_gpu_throughput", "run_profile"),
    "oom": ("_gpu_oom", "run_oom"),
}


def _run_parts(names: list[str], args: argparse.Namespace) -> None:
    """Run parts in this process, one after the other (the driver's child).

    A part that raises is reported (traceback on stdout, a ``crashed`` status)
    and the next one still runs.
    """
    from _gpu_plan import Context, ModelFiles, Plan, device

    workdir = Path(args.workdir)
    ctx = Context(
        plan=Plan.tiny() if args.smoke else Plan.full(),
        files=ModelFiles(workdir / "models"),
        where=device(),
        workdir=workdir,
        peak_override=args.peak_tflops,
    )
    if args.smoke:
        # Toy matrices gain nothing from threads, and on a busy shared host
        # (CI) threads waiting for each other make every operation slower.
        import torch

        torch.set_num_threads(1)
    for part in names:
        rec = Recorder(workdir, part)
        rec.start()
        if part in NEEDS_MODELS and not ctx.files.complete.exists():
            rec.skip(part, "skipped: the models part did not finish")
            rec.done()
            continue
        module, function = RUNNERS[part]
        try:
            getattr(importlib.import_module(module), function)(rec, ctx)
        except Exception:  # noqa: BLE001 - reported, then the next part runs
            traceback.print_exc(file=sys.stdout)
            rec.status("crashed (exception above)", time.perf_counter() - rec.started)
        else:
            rec.done()


# -------------------------------------------------------------------- driver
def _copy_lines(stream: IO[str], log: IO[str]) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        log.write(line)
        log.flush()


def _start_parts(
    names: list[str], args: argparse.Namespace, log: IO[str], limit_s: float
):
    command = [sys.executable, __file__, "--part", ",".join(names)]
    command += ["--workdir", args.workdir]
    if args.smoke:
        command.append("--smoke")
    if args.peak_tflops:
        command += ["--peak-tflops", str(args.peak_tflops)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A session of its own: at the limit the part and every process it started
    # (predict runs, nvidia-smi) are killed together.
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    reader = threading.Thread(target=_copy_lines, args=(child.stdout, log))
    reader.start()
    start = time.perf_counter()
    try:
        child.wait(timeout=limit_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        timed_out = True
    reader.join()
    return child.returncode, timed_out, time.perf_counter() - start


def _selected(args: argparse.Namespace) -> list[str]:
    wanted = [p for p in args.parts.split(",") if p]
    unknown = set(wanted) - set(PARTS)
    if unknown:
        sys.exit(f"unknown part(s) {sorted(unknown)}; choose from {list(PARTS)}")
    if not wanted:
        wanted = [p for p in PARTS if p != "profile" or args.profile]
    models_done = (Path(args.workdir) / "models" / ".complete").exists()
    if NEEDS_MODELS & set(wanted) and not models_done:
        wanted.append("models")
    # Every run says which machine it measured (and throughput needs its ceiling).
    return [p for p in PARTS if p in {*wanted, "env"}]


def _groups(parts: list[str], *, smoke: bool) -> list[list[str]]:
    """Which parts share a process: each its own, but profile with throughput
    (it reuses the loaded 3B model); in smoke mode all in one (each import of
    torch and the models costs seconds that toy sizes do not need)."""
    if smoke:
        return [parts]
    groups: list[list[str]] = []
    for part in parts:
        if part == "profile" and groups and groups[-1] == ["throughput"]:
            groups[-1].append(part)
        else:
            groups.append([part])
    return groups


def _set_earlier_results_apart(workdir: Path) -> None:
    """A rerun in the same workdir: earlier results are kept, but apart."""
    earlier = workdir / RESULTS_NAME
    if earlier.exists():
        with (workdir / "results-earlier.jsonl").open("a") as handle:
            handle.write(earlier.read_text())
        earlier.unlink()


def _mark_unfinished(
    workdir: Path, names: list[str], outcome: tuple[int, bool, float]
) -> None:
    """Give every part of a finished process without an end its status."""
    code, timed_out, seconds = outcome
    records = read_results(workdir)
    for part in names:
        kinds = [r["kind"] for r in records if r["part"] == part]
        if "done" in kinds or "status" in kinds:
            continue
        if not kinds:
            state = "not started (time limit)" if timed_out else "not started"
        elif timed_out:
            state = "killed at its time limit"
        else:
            state = f"crashed (exit {code})"
        Recorder(workdir, part).status(state, seconds)


def _drive(args: argparse.Namespace, parts: list[str], workdir: Path) -> int:
    budget = args.budget_s or (300 if args.smoke else 450)
    deadline = time.perf_counter() + budget
    _set_earlier_results_apart(workdir)
    with (workdir / "gpu_check.log").open("a") as log:
        for names in _groups(parts, smoke=args.smoke):
            wanted = sum(SMOKE_LIMIT_S if args.smoke else LIMIT_S[p] for p in names)
            limit = min(wanted, deadline - time.perf_counter() - 5)
            if limit < MIN_PART_S:
                for part in names:
                    Recorder(workdir, part).status("skipped: no time left", 0)
                continue
            banner = f"\n== {', '.join(names)} (limit {limit:.0f} s)"
            print(banner, flush=True)
            log.write(banner + "\n")
            _mark_unfinished(workdir, names, _start_parts(names, args, log, limit))
            copy_to_out(workdir)
    records = read_results(workdir)
    lines = summary_lines(records, parts)
    code, last = verdict(records, parts)
    lines.append(last)
    print("\n".join(lines), flush=True)
    (workdir / "summary.txt").write_text("\n".join(lines) + "\n")
    copy_to_out(workdir)
    return code


def main() -> int:
    args = _arguments()
    if args.part:
        _run_parts(args.part.split(","), args)
        return 0
    if not args.smoke:
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: run with --smoke to check the script on a CPU")
            return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = str(workdir)
    print(f"workdir {workdir}; smoke {args.smoke}", flush=True)
    try:
        return _drive(args, _selected(args), workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
