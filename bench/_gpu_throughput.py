"""GPU check parts ``throughput`` and ``profile``.

throughput, same GPU, same run, VirNucPro-shaped frames (<= 166 aa):

- ESM-2 ours bf16, packed, default token budget: tokens/s and model FLOP
  utilisation (MFU) against the datasheet peak and against this run's measured
  bf16 matmul ceiling; then the budgets of ``Plan.budgets`` on a subset, and the
  attention backend forced to SDPA when the automatic choice was another;
- fair-esm with its own 2048-token batches, fp16 (``model.half()``; fp32 on a CPU,
  where fair-esm's fp16 fails);
- DNABERT-S ours bf16 against one sequence at a time in fp32 (frames/s).

profile: ``torch.profiler`` over a few batches of ESM-2 bf16: the top kernels by
GPU time, the share of matrix products and attention, and how busy the GPU was
(kernel time / wall time); the whole table goes to ``profile.txt``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812
from _embedding_workloads import (
    OneAtATimeDnabert,
    esm_flops,
    fair_esm_embed,
    load,
)
from _gpu_correctness import MIN_COSINE
from _gpu_plan import datasheet_peak, free_gpu, timed
from _gpu_report import find, read_results
from _gpu_setup import fair_esm_from_file
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from virnucpro_app.models.attention import BACKEND_ENV
from virnucpro_app.models.batching import plan_batches

if TYPE_CHECKING:
    from _gpu_plan import Context, Plan
    from _gpu_report import Recorder

    from virnucpro_app.models import Encoder

#: The issue's goal for ESM-2 3B bf16 on an H100/H200-class GPU.
MFU_GOAL = 50.0
_MATMUL = re.compile(
    r"gemm|cutlass|xmma|nvjet|sm90_|sm80_|matmul|cublas", re.IGNORECASE
)
_ATTENTION = re.compile(r"flash|fmha|attention|sdpa|varlen", re.IGNORECASE)


class Speed:
    """Formats tokens/s with model FLOP utilisation against two ceilings."""

    def __init__(self, plan: Plan, peak: float | None, ceiling: float | None) -> None:
        self.plan = plan
        self.peak = peak
        self.ceiling = ceiling

    def mfu(self, proteins: list[str], seconds: float) -> float | None:
        """Percent of the datasheet peak (None without one)."""
        if not self.peak:
            return None
        size = self.plan.size
        flops = esm_flops(
            [len(p) + 2 for p in proteins], layers=size.esm_layers, dim=size.esm_dim
        )
        return 100 * flops / seconds / (self.peak * 1e12)

    def record(
        self, rec: Recorder, label: str, proteins: list[str], seconds: float
    ) -> float | None:
        """One ESM-2 speed figure; returns its MFU."""
        tokens = sum(len(p) + 2 for p in proteins)
        utilisation = self.mfu(proteins, seconds)
        detail = f"{len(proteins)} proteins, {len(proteins) / seconds:,.0f} frames/s"
        if utilisation is not None:
            detail += f", MFU {utilisation:.1f} % of {self.peak:g} TFLOP/s"
            if self.ceiling:
                share = utilisation * self.peak / self.ceiling
                detail += f" ({share:.1f} % of the measured {self.ceiling:g})"
        rec.figure(label, round(tokens / seconds), "tokens/s", detail)
        return utilisation


#: ESM-2 bf16 loaded once per process: throughput and profile share it.
_LOADED: dict[str, Encoder] = {}


def _esm_bf16(ctx: Context) -> Encoder:
    if "esm" not in _LOADED:
        _LOADED["esm"] = load("esm", ctx.files.esm, device=ctx.where, precision="bf16")
    return _LOADED["esm"]


def _embed(
    encoder: Encoder, proteins: list[str], where: str, budget: int | None
) -> tuple[torch.Tensor, float]:
    ids = [str(i) for i in range(len(proteins))]
    return timed(lambda: encoder.embed(ids, proteins, tokens_per_batch=budget), where)


class _Throughput:
    """The throughput part's steps, sharing the recorder, context and ceilings."""

    def __init__(self, rec: Recorder, ctx: Context) -> None:
        self.rec, self.ctx = rec, ctx
        self.plan, self.files, self.where = ctx.plan, ctx.files, ctx.where
        ceiling = find(read_results(ctx.workdir), "bf16 matmul ceiling")
        self.speed = Speed(ctx.plan, datasheet_peak(ctx.peak_override)[0], ceiling)

    def esm_ours(self) -> tuple[str, list[str], torch.Tensor]:
        """Ours bf16 at the default budget, then the budget sweep."""
        rec, plan, where = self.rec, self.plan, self.where
        proteins = plan.workload(plan.speed_frames, seed=21).proteins
        sweep = proteins[: plan.sweep_frames]
        encoder = _esm_bf16(self.ctx)
        backend = encoder.info.attention
        _embed(encoder, proteins[:64], where, None)  # warm-up
        if where.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        _, seconds = _embed(encoder, proteins, where, None)
        budget = encoder.default_tokens_per_batch
        label = f"ESM-2 ours bf16, packed, budget {budget}, attention {backend}"
        self._goal(self.speed.record(rec, label, proteins, seconds))
        auto = None  # the sweep's output at the default budget, for the SDPA check
        for tokens in plan.budgets:
            out, seconds = _embed(encoder, sweep, where, tokens)
            self.speed.record(rec, f"ESM-2 ours bf16, budget {tokens}", sweep, seconds)
            auto = out if tokens == budget else auto
        if auto is None:
            auto, _ = _embed(encoder, sweep, where, None)
        return backend, sweep, auto

    def _goal(self, utilisation: float | None) -> None:
        name = f"ESM-2 ours bf16 MFU >= {MFU_GOAL:g} %"
        if utilisation is None:
            self.rec.skip(name)
            return
        self.rec.goal(name, round(utilisation, 1), ok=utilisation >= MFU_GOAL)
        peak_gib = torch.cuda.max_memory_allocated() / 2**30
        self.rec.figure("ESM-2 ours bf16 peak GPU memory", round(peak_gib, 1), "GiB")

    def forced_sdpa(self, backend: str, sweep: list[str], auto: torch.Tensor) -> None:
        """The sweep set again with the attention backend forced to SDPA."""
        if backend == "sdpa":
            self.rec.info("ESM-2 forced SDPA", "not run: the automatic choice is SDPA")
            return
        os.environ[BACKEND_ENV] = "sdpa"
        try:
            encoder = load("esm", self.files.esm, device=self.where, precision="bf16")
        finally:
            os.environ.pop(BACKEND_ENV, None)
        _embed(encoder, sweep[:64], self.where, None)
        out, seconds = _embed(encoder, sweep, self.where, None)
        label = "ESM-2 ours bf16, attention forced to sdpa"
        self.speed.record(self.rec, label, sweep, seconds)
        cosine = F.cosine_similarity(out, auto, dim=1).min().item()
        self.rec.check(
            f"ESM-2 {backend} vs sdpa, min cosine",
            round(cosine, 6),
            ok=cosine >= MIN_COSINE,
        )
        del encoder
        free_gpu(self.where)

    def fair_esm(self) -> None:
        """fair-esm with its own batching: fp16 on a GPU (its fp16 fails on a CPU)."""
        where = self.where
        proteins = self.plan.workload(self.plan.baseline_frames, seed=22).proteins
        model = fair_esm_from_file(self.files.esm, where)
        precision = "fp32 (fp16 fails on a CPU)"
        if where.startswith("cuda"):
            model, precision = model.half(), "fp16"
        fair_esm_embed(model, proteins[:16], device=where)  # warm-up
        _, seconds = timed(
            lambda m=model: fair_esm_embed(m, proteins, device=where), where
        )
        label = f"ESM-2 fair-esm {precision}, its 2048-token batches"
        self.speed.record(self.rec, label, proteins, seconds)
        del model
        free_gpu(where)

    def dnabert(self) -> None:
        """DNABERT-S ours bf16 against one sequence at a time in fp32."""
        plan, where = self.plan, self.where
        dna = plan.workload(plan.speed_frames, seed=23).dna
        ids = [str(i) for i in range(len(dna))]
        encoder = load("dnabert", self.files.dnabert, device=where, precision="bf16")
        encoder.embed(ids[:64], dna[:64])
        _, fast = timed(lambda e=encoder: e.embed(ids, dna), where)
        self.rec.figure(
            f"DNABERT-S ours bf16, packed, attention {encoder.info.attention}",
            round(len(dna) / fast, 1),
            "frames/s",
            f"{len(dna)} frames",
        )
        del encoder
        subset = dna[: plan.baseline_frames]
        baseline = OneAtATimeDnabert(self.files.dnabert, device=where)
        baseline.embed(subset[:8])
        _, slow = timed(lambda: baseline.embed(subset), where)
        ratio = len(dna) / fast / (len(subset) / slow)
        self.rec.figure(
            "DNABERT-S one sequence at a time fp32 (the original)",
            round(len(subset) / slow, 1),
            "frames/s",
            f"{len(subset)} frames; ours is {ratio:.1f}x",
        )


def run_throughput(rec: Recorder, ctx: Context) -> None:
    """The part: see the module docstring."""
    steps = _Throughput(rec, ctx)
    backend, sweep, auto = steps.esm_ours()
    steps.forced_sdpa(backend, sweep, auto)
    steps.fair_esm()
    steps.dnabert()


def _timed_events(prof: profile, *, cuda: bool) -> list[tuple[str, float, int]]:
    """``(name, microseconds, calls)`` per GPU kernel (or per CPU op), longest first.

    On a GPU only the device-side events count (kernels, copies): the CPU-side
    operators that launched them report the same time again.
    """
    totals: dict[str, list[float]] = {}
    if cuda:
        for event in prof.events():
            if event.device_type == DeviceType.CUDA:
                row = totals.setdefault(event.name, [0.0, 0])
                row[0] += event.time_range.elapsed_us()
                row[1] += 1
    else:
        for average in prof.key_averages():
            totals[average.key] = [average.self_cpu_time_total, average.count]
    rows = [(name, spent, int(calls)) for name, (spent, calls) in totals.items()]
    return sorted(rows, key=lambda row: -row[1])


def run_profile(rec: Recorder, ctx: Context) -> None:
    """Profile a few ESM-2 bf16 batches: top kernels and the GPU's busy share."""
    plan, where = ctx.plan, ctx.where
    proteins = plan.workload(plan.profile_frames, seed=31).proteins
    encoder = _esm_bf16(ctx)
    lengths = [len(p) + 2 for p in proteins]
    batches = len(plan_batches(lengths, encoder.default_tokens_per_batch))
    _embed(encoder, proteins[:64], where, None)
    cuda = where.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        _, wall = _embed(encoder, proteins, where, None)
    rows = _timed_events(prof, cuda=cuda)
    total_us = sum(spent for _, spent, _ in rows) or 1.0
    (ctx.workdir / "profile.txt").write_text(
        "\n".join(
            f"{spent / 1e3:12.3f} ms {calls:8d}  {name}" for name, spent, calls in rows
        )
    )
    what = "GPU kernel" if cuda else "CPU op"
    rec.info("profiled", f"{len(proteins)} proteins in {batches} batches, {wall:.2f} s")
    for name, spent, calls in rows[:12]:
        share = 100 * spent / total_us
        rec.info(
            f"top {what}",
            name[:90],
            f"{spent / 1e3:.1f} ms, {share:.1f} %, {calls} calls",
        )
    if not cuda:
        rec.skip("GPU busy share and kernel classes")
        return
    for label, pattern in (("matrix products", _MATMUL), ("attention", _ATTENTION)):
        share = sum(spent for name, spent, _ in rows if pattern.search(name))
        rec.figure(
            f"share of GPU time in {label}", round(100 * share / total_us, 1), "%"
        )
    rec.figure(
        "GPU busy (kernel and copy time / wall time)",
        round(100 * total_us / 1e6 / wall, 1),
        "%",
        "low values mean the host leaves the GPU idle between kernels",
    )
