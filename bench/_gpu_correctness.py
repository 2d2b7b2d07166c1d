"""GPU check part ``correctness``: fp32 against the references, bf16/fp16 against fp32.

On the same paired frames (proteins and their DNA, VirNucPro-shaped):

1. ours in fp32 against fair-esm's own forward (ESM-2) and the one-sequence-at-a-
   time fp32 reference (DNABERT-S): max |diff| on the first ``reference_frames``;
2. ours in bf16 and fp16 against ours in fp32, every frame: per-sequence cosine
   (the bar: >= 0.999);
3. the classifier's calls on the merged features, bf16 and fp16 against fp32:
   agreement in %, with a real-size classifier (3328 -> 512 -> 2) twice: as the
   demo builder makes it (random; its calls barely depend on the frame), and with
   its BatchNorm statistics set from the fp32 hidden layer, so that its calls
   spread over both classes as a trained classifier's do (the harder case: random
   models map all frames to similar embeddings, so precision noise weighs more
   against the differences between frames than it would with real weights).

The bf16 / fp16 rows together are the evidence for ``--precision auto`` (bf16 on
CUDA); the throughput part adds their speed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812
from _embedding_workloads import (
    OneAtATimeDnabert,
    fair_esm_embed,
    load,
)
from _gpu_plan import free_gpu, timed
from _gpu_setup import fair_esm_from_file

from virnucpro_app.models.classifier import MLPClassifier

if TYPE_CHECKING:
    from pathlib import Path

    from _gpu_plan import Context
    from _gpu_report import Recorder

MIN_COSINE = 0.999
#: fp32 on a GPU adds in another order than the reference (cuBLAS, fused q/k/v):
#: differences of 1e-5..1e-4 on O(1) embeddings are rounding; 1e-2 is a real bug.
FP32_TOLERANCE = 1e-2
PRECISIONS = ("fp32", "bf16", "fp16")


def _ours(
    rec: Recorder, kind: str, path: Path, where: str, sequences: list[str]
) -> dict[str, torch.Tensor]:
    """Our embeddings in every precision (one model on the GPU at a time)."""
    ids = [str(i) for i in range(len(sequences))]
    out = {}
    for precision in PRECISIONS:
        encoder = load(kind, path, device=where, precision=precision)
        encoder.embed(ids[:32], sequences[:32])  # warm-up: kernels, allocator
        out[precision], seconds = timed(
            lambda e=encoder: e.embed(ids, sequences), where
        )
        rec.figure(
            f"{kind} ours {precision}",
            round(len(ids) / seconds, 1),
            "frames/s",
            f"{len(ids)} frames, attention {encoder.info.attention}",
        )
        del encoder
        free_gpu(where)
    return out


def _agreement(rec: Recorder, label: str, out: dict[str, torch.Tensor]) -> None:
    for precision in ("bf16", "fp16"):
        cosine = F.cosine_similarity(out[precision], out["fp32"], dim=1)
        rec.check(
            f"{label} {precision} vs ours fp32, min cosine",
            round(cosine.min().item(), 6),
            ok=cosine.min().item() >= MIN_COSINE,
            detail=f"{len(cosine)} frames, mean {cosine.mean().item():.6f}",
        )


def _reference(
    rec: Recorder, label: str, ours: torch.Tensor, reference: torch.Tensor, what: str
) -> None:
    diff = (ours[: len(reference)] - reference).abs()
    rec.check(
        f"{label} ours fp32 vs {what}, max |diff|",
        diff.max().item(),
        ok=diff.max().item() <= FP32_TOLERANCE,
        detail=f"{len(reference)} frames, mean |diff| {diff.mean().item():.2e}",
    )


def _labels(rec: Recorder, features: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(0)
    model = MLPClassifier(features["fp32"].shape[1]).eval()
    with torch.no_grad():
        for variant in ("as built", "BatchNorm set from fp32 features"):
            if variant != "as built":
                hidden = model.hidden_layer(features["fp32"])
                model.bn1.running_mean.copy_(hidden.mean(0))
                model.bn1.running_var.copy_(hidden.var(0))
            calls = {p: model(f).argmax(1) for p, f in features.items()}
            virus = calls["fp32"].float().mean().item()
            for precision in ("bf16", "fp16"):
                same = (calls[precision] == calls["fp32"]).float().mean().item()
                rec.figure(
                    f"labels {precision} vs fp32, classifier {variant}",
                    round(100 * same, 2),
                    "% agree",
                    f"{len(calls['fp32'])} frames; fp32 calls {virus:.0%} virus",
                )


def run_correctness(rec: Recorder, ctx: Context) -> None:
    """The part: see the module docstring."""
    plan, files, where = ctx.plan, ctx.files, ctx.where
    work = plan.workload(plan.agree_frames, seed=11)
    first = plan.reference_frames
    esm = _ours(rec, "esm", files.esm, where, work.proteins)
    reference = fair_esm_from_file(files.esm, where)
    fair, _ = fair_esm_embed(reference, work.proteins[:first], device=where)
    del reference
    free_gpu(where)
    _reference(rec, "ESM-2", esm["fp32"], fair, "fair-esm fp32")
    _agreement(rec, "ESM-2", esm)
    dnabert = _ours(rec, "dnabert", files.dnabert, where, work.dna)
    one, _ = OneAtATimeDnabert(files.dnabert, device=where).embed(work.dna[:first])
    _reference(rec, "DNABERT-S", dnabert["fp32"], one, "one at a time fp32")
    _agreement(rec, "DNABERT-S", dnabert)
    features = {p: torch.cat([dnabert[p], esm[p]], dim=1) for p in PRECISIONS}
    _labels(rec, features)
    # The evidence line for --precision auto, from the rows above.
    rows = []
    for precision in ("bf16", "fp16"):
        cosines = [
            F.cosine_similarity(out[precision], out["fp32"], dim=1).min().item()
            for out in (esm, dnabert)
        ]
        rows.append(f"{precision}: min cosine {min(cosines):.6f}")
    rec.info(
        "precision evidence (auto = bf16 on CUDA)",
        "; ".join(rows),
        f"bar: >= {MIN_COSINE} per frame in both models",
    )
