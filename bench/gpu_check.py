"""Prepared GPU check for the embedding encoders: run once on a lent GPU.

Run: python bench/gpu_check.py [--count 4000] [--baseline-count 400] [--peak-tflops F]
     python bench/gpu_check.py --smoke        # tiny sizes, works on a CPU too

What it does, on real-size architectures with random weights (ESM-2 3B: 36 x 2560,
40 heads; DNABERT-S: 12 x 768, 12 heads), in about 2-4 minutes on an H100/H200:

1. agreement: per-sequence cosine of ours in bf16 against fp32 references
   (fair-esm fp32 for ESM-2, one-sequence-at-a-time fp32 for DNABERT-S), must be
   >= 0.999; ours fp32 against them, max |diff|;
2. speed: tokens/s and model FLOP utilisation of ours bf16 / fp32 against
   fair-esm fp32 and fp16 with its own 2048-token batching (same GPU, same run);
   ESM-2 again with the attention backend forced to SDPA when another was chosen;
3. out-of-memory back-off: GPU memory filled up to ~1.5 GiB free, then an
   oversized --tokens-per-batch must warn, halve and still give the same result.

Prints PASS/FAIL per check and exits 1 when one fails. Nothing is written
outside a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _embedding_workloads import (
    SMOKE_SIZE,
    RealSize,
    Settings,
    dnabert_realsize,
    esm_realsize,
    fair_esm_model,
    fair_esm_state_for_ours,
    make_workload,
    min_cosine,
    peak_tflops,
)

from virnucpro_app.models.attention import BACKEND_ENV
from virnucpro_app.models.esm2 import Esm2Encoder
from virnucpro_app.models.esm2_files import Esm2Config

MIN_COSINE = 0.999
RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, detail: str, *, ok: bool) -> None:
    RESULTS.append((name, ok, detail))
    print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def agreement(label: str, results: dict[str, torch.Tensor], reference: str) -> None:
    ref = results[reference]
    bf16 = results["ours bf16"]
    cos = min_cosine(bf16, ref)
    check(f"{label} bf16 vs {reference}", f"min cosine {cos:.6f}", ok=cos >= MIN_COSINE)
    diff = (results["ours fp32"] - ref).abs().max().item()
    check(f"{label} fp32 vs {reference}", f"max |diff| {diff:.2e}", ok=diff <= 1e-2)


def esm_backend_comparison(size: RealSize, device: str, count: int) -> None:
    """ESM-2 bf16 with the automatic backend and with SDPA forced."""
    torch.manual_seed(0)
    model = fair_esm_model(
        layers=size.esm_layers, dim=size.esm_dim, heads=size.esm_heads, device=device
    )
    state = fair_esm_state_for_ours(model)
    del model
    config = Esm2Config(size.esm_layers, size.esm_dim, size.esm_heads)
    proteins = make_workload(count, seed=5).proteins
    ids = [str(i) for i in range(count)]
    outputs = {}
    for forced in ("", "sdpa"):
        os.environ[BACKEND_ENV] = forced
        encoder = Esm2Encoder.from_state(config, state, device=device, precision="bf16")
        encoder.embed(ids[:32], proteins[:32])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        outputs[encoder.info.attention] = encoder.embed(ids, proteins)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = sum(len(p) + 2 for p in proteins)
        backend = encoder.info.attention
        print(f"  ESM-2 bf16, attention {backend:<13} {tokens / seconds:>12,.0f} tok/s")
        del encoder
    os.environ.pop(BACKEND_ENV, None)
    if len(outputs) == 2:
        a, b = outputs.values()
        cos = min_cosine(a, b)
        detail = f"min cosine {cos:.6f}"
        check("ESM-2 attention backends agree", detail, ok=cos >= MIN_COSINE)


def oom_backoff(size: RealSize, device: str) -> None:
    """Fill the GPU, then ask for a batch that cannot fit: must back off, not die."""
    if not device.startswith("cuda"):
        print("  (out-of-memory check needs CUDA: skipped in smoke mode on CPU)")
        return
    torch.manual_seed(0)
    model = fair_esm_model(
        layers=size.esm_layers, dim=size.esm_dim, heads=size.esm_heads, device=device
    )
    state = fair_esm_state_for_ours(model)
    del model
    config = Esm2Config(size.esm_layers, size.esm_dim, size.esm_heads)
    encoder = Esm2Encoder.from_state(config, state, device=device, precision="bf16")
    del state
    proteins = make_workload(600, seed=7).proteins
    ids = [str(i) for i in range(len(proteins))]
    expected = encoder.embed(ids, proteins, tokens_per_batch=4096)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - (3 << 29)), dtype=torch.uint8, device=device)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = encoder.embed(ids, proteins, tokens_per_batch=1 << 20)
    finally:
        del filler
        torch.cuda.empty_cache()
    backoffs = [str(w.message) for w in caught if "out of GPU memory" in str(w.message)]
    cos = min_cosine(got, expected)
    last = backoffs[-1] if backoffs else "none"
    detail = f"{len(backoffs)} back-off warning(s) ({last}), min cosine {cos:.6f}"
    check("out-of-memory back-off", detail, ok=bool(backoffs) and cos >= MIN_COSINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU or GPU)")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--baseline-count", type=int, default=400)
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("no CUDA device: run with --smoke to check the script on a CPU")
        return 2
    device = "cuda" if cuda else "cpu"
    size = SMOKE_SIZE if args.smoke else RealSize()
    count, baseline = (64, 32) if args.smoke else (args.count, args.baseline_count)
    peak = peak_tflops(args.peak_tflops) if cuda else None
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"device {name}, torch {torch.__version__}, peak {peak} TFLOP/s")
    print(f"smoke: {args.smoke}")
    if cuda:
        print(f"bf16 supported: {torch.cuda.is_bf16_supported()}")
    work = make_workload(count)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\nESM-2 {size.esm_layers} x {size.esm_dim}, {size.esm_heads} heads:")
        settings = Settings(device, peak, baseline)
        lines, results = esm_realsize(size, work, settings)
        print("\n".join(lines), flush=True)
        agreement("ESM-2", results, "fair-esm fp32")
        del results
        if cuda:
            torch.cuda.empty_cache()
        print(f"\nDNABERT-S {size.dnabert_layers} x {size.dnabert_dim}:")
        lines, results = dnabert_realsize(size, work, settings, Path(tmp))
        print("\n".join(lines), flush=True)
        agreement("DNABERT-S", results, "one at a time fp32")
        del results
    print("\nattention backends:")
    esm_backend_comparison(size, device, min(count, 2000))
    print("\nout-of-memory back-off:")
    oom_backoff(size, device)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(
        f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed"
        + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
