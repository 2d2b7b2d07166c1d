"""GPU check parts ``env`` (what the machine is) and ``models`` (the random models).

The models are written with the project's own demo builders in the real on-disk
formats, at the published sizes: ESM-2 3B as a fair-esm ``.pt`` file (fp32, as
``write_esm2_file`` writes it), DNABERT-S as a Hugging Face folder (the demo DNA
tokenizer: about twice as many tokens per base as the real 4096-token BPE), and a
real-size classifier (768 + 2560 inputs, 500-bp chunks). Their outputs are not
biology; they exercise the real loaders, kernels and shapes.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
from typing import TYPE_CHECKING

import torch
from _embedding_workloads import fair_esm_model
from _gpu_plan import FLOP_FORMULA, datasheet_peak, timed

from virnucpro_app.demo import write_demo_classifier
from virnucpro_app.models.demo_weights import write_dnabert_folder, write_esm2_file
from virnucpro_app.models.esm2_files import read_esm2_file

if TYPE_CHECKING:
    from pathlib import Path

    from _gpu_plan import Context
    from _gpu_report import Recorder

#: Side of the square bf16 matrices of the ceiling measurement (KINDS.md: ~790
#: TFLOP/s measured on such a machine with the same product).
_CEILING_N = 8192


def nvidia_smi(*query: str) -> str | None:
    """``nvidia-smi --query-gpu=...`` of GPU 0, or None without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    command = ["nvidia-smi", f"--query-gpu={','.join(query)}", "--format=csv,noheader"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip().splitlines()[0] if result.stdout.strip() else None


def matmul_ceiling_tflops() -> float:
    """bf16 ``8192^3`` matmul rate on random data: median of 10 after 3 warm-ups."""
    n = _CEILING_N
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times_ms = []
    for _ in range(10):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times_ms.append(start.elapsed_time(end))
    return 2 * n**3 / (statistics.median(times_ms) / 1e3) / 1e12


def run_env(rec: Recorder, ctx: Context) -> None:
    """Record the machine: GPU, versions, the matmul ceiling, the peak used."""
    rec.info("python", platform.python_version())
    rec.info("torch", torch.__version__)
    backends = []
    if importlib.util.find_spec("flash_attn") is not None:
        backends.append("flash-attn")
    if importlib.util.find_spec("torch.nn.attention.varlen") is not None:
        backends.append("torch-varlen")
    rec.info("varlen attention importable", ", ".join(backends) or "none")
    if not torch.cuda.is_available():
        rec.info("device", f"CPU ({os.cpu_count()} cores)")
        rec.skip("bf16 matmul ceiling")
    else:
        props = torch.cuda.get_device_properties(0)
        rec.info(
            "device",
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, "
            f"{props.multi_processor_count} SMs, sm_{props.major}{props.minor}",
        )
        rec.info(
            "CUDA",
            f"torch built for CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}",
        )
        rec.info("driver", nvidia_smi("driver_version") or "nvidia-smi not found")
        rec.info("bf16 supported", torch.cuda.is_bf16_supported())
        rec.figure(
            "bf16 matmul ceiling",
            round(matmul_ceiling_tflops(), 1),
            "TFLOP/s",
            f"{_CEILING_N}^3 bf16 on random data, median of 10 after 3 warm-ups",
        )
    peak, source = datasheet_peak(ctx.peak_override)
    rec.info("peak used for MFU", peak or "none", source)
    rec.info("FLOP formula", FLOP_FORMULA)


def run_models(rec: Recorder, ctx: Context) -> None:
    """Write the three random-weight models (CPU work, all cores)."""
    if not ctx.plan.smoke:
        torch.set_num_threads(os.cpu_count() or 1)
    files, size = ctx.files, ctx.plan.size
    files.folder.mkdir(parents=True, exist_ok=True)
    writers = (
        (
            "wrote ESM-2 (fair-esm .pt, fp32)",
            lambda: write_esm2_file(
                files.esm,
                num_layers=size.esm_layers,
                embed_dim=size.esm_dim,
                num_heads=size.esm_heads,
            ),
            f"{size.esm_layers} x {size.esm_dim}, {size.esm_heads} heads",
        ),
        (
            "wrote DNABERT-S (HF folder, safetensors)",
            lambda: write_dnabert_folder(
                files.dnabert,
                hidden_size=size.dnabert_dim,
                num_layers=size.dnabert_layers,
                num_heads=size.dnabert_heads,
                intermediate_size=size.dnabert_inner,
                vocab_size=size.dnabert_vocab,
            ),
            f"{size.dnabert_layers} x {size.dnabert_dim}, {size.dnabert_heads} heads",
        ),
    )
    for label, write, detail in writers:
        _, seconds = timed(write, "cpu")
        rec.figure(label, round(seconds, 1), "s", detail)
    rec.info("ESM-2 file", f"{files.esm.stat().st_size / 1e9:.2f} GB")
    write_demo_classifier(
        files.classifier, input_dim=size.dnabert_dim + size.esm_dim, chunk_size=500
    )
    rec.info("classifier", f"{size.dnabert_dim + size.esm_dim} -> 512 -> 2, 500 bp")
    files.complete.write_text("")


def fair_esm_from_file(path: Path, where: str) -> torch.nn.Module:
    """fair-esm's own ``ESM2`` (its forward code) on ``where``, with the file's weights.

    Built on the device and filled from the project's checked reader: fair-esm's
    loader would first initialise 2.8 B parameters randomly on the CPU and keep a
    second full copy in host memory, tens of seconds for nothing. Only the
    language-model and contact heads (unused) and the rotary ``inv_freq`` buffers
    (fair-esm recomputes the same constants) stay as fair-esm made them.
    """
    config, state, _ = read_esm2_file(path)
    model = fair_esm_model(
        layers=config.num_layers,
        dim=config.embed_dim,
        heads=config.num_heads,
        device=where,
    )
    result = model.load_state_dict(state, strict=False)
    left = [
        key
        for key in result.missing_keys
        if not key.startswith(("lm_head.", "contact_head."))
        and not key.endswith("inv_freq")
    ]
    if left or result.unexpected_keys:
        msg = f"fair-esm model does not take {path}: {left} {result.unexpected_keys}"
        raise RuntimeError(msg)
    return model.eval()
