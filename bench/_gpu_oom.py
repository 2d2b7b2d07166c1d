"""GPU check part ``oom``: running out of GPU memory halves the batch, not the run.

ESM-2 bf16 embeds a set of proteins once with room to spare, then again with the
GPU filled up to ~1.5 GiB free and a token budget far too large for that: the
encoder must warn, halve its budget and retry, and give the same embeddings.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from _embedding_workloads import load, min_cosine

if TYPE_CHECKING:
    from _gpu_plan import Context
    from _gpu_report import Recorder

#: GPU memory left free while the oversized batch runs.
_LEFT_FREE = 3 << 29


def run_oom(rec: Recorder, ctx: Context) -> None:
    """The part: see the module docstring."""
    plan, files, where = ctx.plan, ctx.files, ctx.where
    if not where.startswith("cuda"):
        rec.skip("out-of-memory back-off")
        return
    encoder = load("esm", files.esm, device=where, precision="bf16")
    proteins = plan.workload(plan.oom_frames, seed=7).proteins
    ids = [str(i) for i in range(len(proteins))]
    expected = encoder.embed(ids, proteins, tokens_per_batch=4096)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - _LEFT_FREE), dtype=torch.uint8, device=where)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = encoder.embed(ids, proteins, tokens_per_batch=1 << 20)
    finally:
        del filler
        torch.cuda.empty_cache()
    backoffs = [str(w.message) for w in caught if "out of GPU memory" in str(w.message)]
    cosine = min_cosine(got, expected)
    rec.check(
        "out-of-memory back-off: warned, retried, same embeddings",
        round(cosine, 6),
        ok=bool(backoffs) and cosine >= 0.999,
        detail=f"{len(backoffs)} back-off(s), last: {backoffs[-1] if backoffs else 'none'}",
    )
