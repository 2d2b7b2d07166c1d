"""Embedding throughput: ours against the original tool's approach, in one run.

Run: python bench/bench_embeddings.py [--count 400] [--sizes demo,small] [--threads 1]
     [--no-cuda]

CPU (always): the demo models (with ``--sizes demo,small,base`` also ESM-2 t6-8M
and a 4 x 256 DNABERT, then ESM-2 t12-35M and the real 12 x 768 DNABERT-S, random
weights), fp32:
  - DNABERT-S: ours (packed batches) vs one sequence at a time (the original);
  - ESM-2: ours vs fair-esm's own forward with its 2048-token batching.
CUDA (when available): the real-size architectures with random weights
(ESM-2 3B: 36 x 2560, 40 heads; DNABERT-S: 12 x 768), ours in bf16 (and fp32)
against fair-esm fp32 and fp16 on the same GPU, with model FLOP utilisation.
Inputs are VirNucPro-shaped: proteins of stop-free frames of 500-bp chunks
(<= 166 aa) and their 3p+1-bp nucleotide partners. Figures are sequences/s and
tokens/s (tokens include BOS/EOS or CLS/SEP); ratios come from the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from _embedding_workloads import (
    SMOKE_SIZE,
    RealSize,
    Settings,
    Workload,
    dnabert_realsize,
    esm_realsize,
    fair_esm_embed,
    fair_esm_model,
    load,
    make_workload,
    peak_tflops,
    row,
    timed,
    write_dnabert,
    write_esm,
)

from virnucpro_app.demo import make_demo_models

#: Each CPU figure is the best of this many runs (the machine may be shared).
REPEAT = {"demo": 3, "small": 3, "base": 1}

CPU_SIZES = {
    # name: (esm layers, dim, heads), (dnabert layers, dim, heads, inner)
    "demo": None,
    "small": ((6, 320, 20), (4, 256, 8, 512)),
    # ESM-2 t12-35M and the real DNABERT-S size
    "base": ((12, 480, 20), (12, 768, 12, 3072)),
}


def _summary(
    fast: torch.Tensor, slow: torch.Tensor, fast_s: float, slow_s: float
) -> str:
    diff = (fast - slow).abs().max().item()
    return f"  speed-up {slow_s / fast_s:.1f}x, max |diff| {diff:.2e}"


def _cpu_pair(
    name: str, dnabert_dir: Path, esm_path: Path, work: Workload
) -> list[str]:
    lines = [f"CPU, {name} models, {len(work.proteins)} sequences, fp32:"]
    ids = [str(i) for i in range(len(work.dna))]

    ours = load("dnabert", dnabert_dir, device="cpu", precision="fp32")
    tokens = sum(len(t) for t in ours.tokenize(ids, work.dna))  # type: ignore[attr-defined]
    ours.embed(ids[:16], work.dna[:16])
    fast, _, fast_s = timed(
        lambda: (ours.embed(ids, work.dna), tokens), device="cpu", repeat=REPEAT[name]
    )
    from _embedding_workloads import OneAtATimeDnabert

    baseline = OneAtATimeDnabert(dnabert_dir)
    slow, _, slow_s = timed(
        lambda: baseline.embed(work.dna), device="cpu", repeat=REPEAT[name]
    )
    lines += [
        "  DNABERT-S",
        row("ours (packed, token-budget batches)", len(ids), tokens, fast_s, None),
        row("one sequence at a time (original)", len(ids), tokens, slow_s, None),
        _summary(fast, slow, fast_s, slow_s),
    ]

    ours = load("esm", esm_path, device="cpu", precision="fp32")
    tokens = sum(len(p) + 2 for p in work.proteins)
    ours.embed(ids[:16], work.proteins[:16])
    fast, _, fast_s = timed(
        lambda: (ours.embed(ids, work.proteins), tokens),
        device="cpu",
        repeat=REPEAT[name],
    )
    reference = fair_esm_model(esm_path)
    slow, _, slow_s = timed(
        lambda: fair_esm_embed(reference, work.proteins, device="cpu"),
        device="cpu",
        repeat=REPEAT[name],
    )
    lines += [
        "  ESM-2",
        row("ours (packed, token-budget batches)", len(ids), tokens, fast_s, None),
        row("fair-esm, 2048-token batches (original)", len(ids), tokens, slow_s, None),
        _summary(fast, slow, fast_s, slow_s),
    ]
    return lines


def run_cpu(sizes: list[str], count: int, tmp: Path) -> None:
    for name in sizes:
        # the base sizes are slow on a CPU: a sixth of the sequences
        work = make_workload(count // 6 if name == "base" else count)
        if name == "demo":
            demo = make_demo_models(tmp / "demo")
            dnabert_dir, esm_path = demo.dnabert_dir, demo.esm_path
        else:
            (el, ed, eh), (dl, dd, dh, di) = CPU_SIZES[name]  # type: ignore[misc]
            esm_path = write_esm(
                tmp / name / "esm2_small.pt", layers=el, dim=ed, heads=eh
            )
            dnabert_dir = write_dnabert(
                tmp / name / "dnabert",
                hidden_size=dd,
                num_layers=dl,
                num_heads=dh,
                intermediate_size=di,
                vocab_size=4096 if name == "base" else 128,
            )
        print("\n".join(_cpu_pair(name, dnabert_dir, esm_path, work)), flush=True)


def run_cuda(size: RealSize, count: int, settings: Settings, tmp: Path) -> None:
    name = torch.cuda.get_device_name()
    print(f"\nCUDA {name}, real-size architectures, random weights")
    print(f"(MFU against {settings.peak} TFLOP/s dense bf16)")
    work = make_workload(count)
    print(f"  ESM-2 {size.esm_layers} x {size.esm_dim}, {size.esm_heads} heads")
    lines, _ = esm_realsize(size, work, settings)
    print("\n".join(lines), flush=True)
    torch.cuda.empty_cache()
    print(f"  DNABERT-S {size.dnabert_layers} x {size.dnabert_dim}")
    lines, _ = dnabert_realsize(size, work, settings, tmp)
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="CPU sequences")
    parser.add_argument("--sizes", default="demo", help="CPU sizes: demo,small")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: stable figures on a shared machine)",
    )
    parser.add_argument("--no-cuda", action="store_true", help="skip the GPU part")
    parser.add_argument("--cuda-count", type=int, default=4000)
    parser.add_argument("--cuda-baseline-count", type=int, default=400)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--smoke-cuda", action="store_true", help="tiny GPU sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    with tempfile.TemporaryDirectory() as tmp:
        run_cpu(args.sizes.split(","), args.count, Path(tmp))
        if torch.cuda.is_available() and not args.no_cuda:
            size = SMOKE_SIZE if args.smoke_cuda else RealSize()
            settings = Settings(
                "cuda", peak_tflops(args.peak_tflops), args.cuda_baseline_count
            )
            run_cuda(size, args.cuda_count, settings, Path(tmp))
        elif not args.no_cuda:
            print("\nCUDA: not available here; the GPU part did not run")


if __name__ == "__main__":
    main()
