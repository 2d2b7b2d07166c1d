"""On CUDA: bf16 embeddings agree with fp32 ones (cosine >= 0.999 per sequence).

Skipped, with the reason shown by ``-ra``, on machines without CUDA. The bigger
real-size GPU check is ``bench/gpu_check.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from ..support.tiny_models import (
    AMINO_ACIDS,
    BASES,
    load_quietly,
    write_tiny_dnabert,
    write_tiny_esm,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

MIN_COSINE = 0.999


def _random_sequences(letters: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(letters) for _ in range(rng.randint(5, 400)))
        for _ in range(count)
    ]


@pytest.mark.parametrize("kind", ["dnabert", "esm"])
def test_bf16_on_cuda_matches_fp32_per_sequence(tmp_path: Path, kind: str) -> None:
    if kind == "dnabert":
        path = write_tiny_dnabert(
            tmp_path / "m",
            num_heads=12,
            hidden_size=192,
            intermediate_size=384,
            num_layers=4,
        )
        sequences = _random_sequences(BASES, 64, seed=1)
    else:
        path = write_tiny_esm(tmp_path, num_layers=4, embed_dim=320, num_heads=20)
        sequences = _random_sequences(AMINO_ACIDS, 64, seed=2)
    ids = [str(i) for i in range(len(sequences))]
    reference = load_quietly(kind, path, device="cuda", precision="fp32").embed(
        ids, sequences
    )
    fast = load_quietly(kind, path, device="cuda", precision="bf16")
    got = fast.embed(ids, sequences)
    assert got.dtype == torch.float32
    assert got.device.type == "cpu"
    cosine = torch.nn.functional.cosine_similarity(got, reference, dim=1)
    assert cosine.min().item() >= MIN_COSINE, (fast.info.attention, cosine.min().item())
