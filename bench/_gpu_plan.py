"""Sizes, time limits, model files and timing helpers of the prepared GPU check.

How the full sizes were chosen (H200; ESM-2 3B costs 5.7 GFLOP per token, frames
average ~146 tokens): at a hoped-for 40 % of the 989 TFLOP/s bf16 peak, ours runs
~70k tokens/s; plain fp32 (no tensor cores, ~50 TFLOP/s) ~9k tokens/s. Hence
1,500 frames cost ~25 s in fp32 (the correctness reference), 6,000 frames ~12 s
in bf16 (throughput), and a predict run over ~4,500 frames ~10 s of ESM-2 plus
~20 s of start-up and loading the 11.4 GB model, three times (kill and resume).
Writing the random 3B model (fp32, fair-esm layout) takes ~40-60 s of CPU; a
sync save of the 3 GiB GPU state ~5-10 s (disk speed unknown). Expected total:
~6.5 minutes, inside the 450 s default budget. The parts' limits add up to more
than the budget on purpose: each part is cut at its own limit, and the driver
gives no part more than the budget has left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
from _embedding_workloads import (
    SMOKE_SIZE,
    RealSize,
    Workload,
    make_workload,
    peak_tflops,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

T = TypeVar("T")

#: Parts in the order they run; ``profile`` only with --profile.
PARTS = (
    "env",
    "models",
    "correctness",
    "predict",
    "checkpoint",
    "throughput",
    "profile",
    "oom",
)
#: Seconds each part may run (full sizes on an H200); smoke parts get SMOKE_LIMIT_S.
LIMIT_S = {
    "env": 60,
    "models": 180,
    "correctness": 150,
    "predict": 210,
    "checkpoint": 150,
    "throughput": 150,
    "profile": 60,
    "oom": 60,
}
SMOKE_LIMIT_S = 90
#: A part is not started with less time than this left in the budget.
MIN_PART_S = 20


@dataclass(frozen=True)
class Plan:
    """How much work each part does."""

    smoke: bool
    size: RealSize
    max_aa: int  # longest protein of the workloads (VirNucPro's 500-bp chunks: 166)
    agree_frames: int  # correctness: fp32 / bf16 / fp16 of ours, labels
    reference_frames: int  # correctness: fair-esm fp32, DNABERT one at a time
    speed_frames: int  # throughput: ours bf16
    sweep_frames: int  # throughput: token budgets, forced SDPA
    baseline_frames: int  # throughput: fair-esm fp16, DNABERT one at a time
    budgets: tuple[int, ...]
    predict_records: int
    shard_size: int
    slice_size: int
    checkpoint_bytes: int
    sync_saves: int
    async_saves: int
    profile_frames: int
    oom_frames: int

    def workload(self, count: int, seed: int) -> Workload:
        """``count`` paired frames (proteins and their DNA) of this plan's length."""
        return make_workload(count, seed=seed, max_aa=self.max_aa)

    @classmethod
    def full(cls) -> Plan:
        """Real-size models and workloads sized for about 6.5 minutes on an H200."""
        return cls(
            smoke=False,
            size=RealSize(),
            max_aa=166,
            agree_frames=1500,
            reference_frames=256,
            speed_frames=6000,
            sweep_frames=1500,
            baseline_frames=1000,
            budgets=(16384, 32768, 65536),
            predict_records=1200,
            shard_size=1200,
            slice_size=400,
            checkpoint_bytes=3 << 30,
            sync_saves=2,
            async_saves=3,
            profile_frames=400,
            oom_frames=600,
        )

    @classmethod
    def tiny(cls) -> Plan:
        """Toy sizes: every code path in seconds, on a CPU too (``--smoke``)."""
        return cls(
            smoke=True,
            size=SMOKE_SIZE,
            max_aa=40,
            agree_frames=16,
            reference_frames=6,
            speed_frames=16,
            sweep_frames=8,
            baseline_frames=6,
            budgets=(256, 1024),
            predict_records=6,
            shard_size=10,
            slice_size=5,
            checkpoint_bytes=8 << 20,
            sync_saves=2,
            async_saves=3,
            profile_frames=16,
            oom_frames=16,
        )


@dataclass(frozen=True)
class ModelFiles:
    """Where the ``models`` part writes the random-weight models."""

    folder: Path

    @property
    def esm(self) -> Path:
        """fair-esm ``.pt`` file (its name must start with ``esm2``)."""
        return self.folder / "esm2_random.pt"

    @property
    def dnabert(self) -> Path:
        """DNABERT-S folder."""
        return self.folder / "dnabert-s-random"

    @property
    def classifier(self) -> Path:
        """Classifier checkpoint (500-bp chunks)."""
        return self.folder / "classifier-500bp-random.ckpt"

    @property
    def complete(self) -> Path:
        """Written last: the models are all there."""
        return self.folder / ".complete"


@dataclass(frozen=True)
class Context:
    """What every part gets: sizes, model files, device, working folder."""

    plan: Plan
    files: ModelFiles
    where: str  # "cuda" or "cpu"
    workdir: Path
    peak_override: float | None = None


def device() -> str:
    """``cuda`` when there is a GPU, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def synchronize(where: str) -> None:
    """Wait for queued GPU work (a no-op on the CPU)."""
    if where.startswith("cuda"):
        torch.cuda.synchronize()


def timed(func: Callable[[], T], where: str) -> tuple[T, float]:
    """``(func(), seconds)`` with the GPU synchronised before and after."""
    synchronize(where)
    start = time.perf_counter()
    result = func()
    synchronize(where)
    return result, time.perf_counter() - start


def free_gpu(where: str) -> None:
    """Return cached GPU memory between measurements."""
    if where.startswith("cuda"):
        torch.cuda.empty_cache()


def datasheet_peak(override: float | None) -> tuple[float | None, str]:
    """Dense bf16/fp16 peak TFLOP/s of this GPU and where the number comes from."""
    peak = peak_tflops(override)
    if override:
        return peak, "--peak-tflops"
    if peak is None:
        return None, "no CUDA" if not torch.cuda.is_available() else "unknown GPU"
    return peak, (
        "vendor datasheet, dense bf16/fp16 tensor cores without sparsity "
        "(H100/H200 SXM: 1979 with sparsity, 989 dense)"
    )


#: What ``_embedding_workloads.esm_flops`` counts: per layer the matmul weights
#: (q, k, v, out: 4 d^2; fc1, fc2: 8 d^2) at two FLOPs per weight per token, plus
#: QK^T and PV (2 n d each per token); embedding, LayerNorm, GELU, softmax left out.
FLOP_FORMULA = (
    "model FLOPs = sum over sequences of (2*12*L*d^2*n + 4*L*d*n^2), n = tokens "
    "incl. BOS/EOS, L layers, d width; ESM-2 3B: 5.66 GFLOP/token + attention"
)
