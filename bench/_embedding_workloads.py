"""Shared pieces of bench_embeddings.py and gpu_check.py (not a test helper).

- realistic VirNucPro-shaped inputs (proteins of stop-free frames of 500-bp
  chunks, at most 166 aa, with their 3p+1-bp nucleotide partners);
- model builders: the demo models, and real-size architectures with random
  weights written in the real on-disk formats;
- the original tool's approaches as baselines: DNABERT-S one sequence at a time
  (MosaicBERT's fp32 PyTorch math), fair-esm's forward with its own 2048-token
  batching;
- FLOP counts for model FLOP utilisation.
"""

from __future__ import annotations

import argparse
import math
import random
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812

from virnucpro_app.models import DemoModelWarning, Encoder, load_encoder
from virnucpro_app.models.demo_weights import (
    dnabert_config,
    dnabert_demo_state,
    write_dna_tokenizer,
    write_esm2_file,
)
from virnucpro_app.models.dnabert import alibi_slopes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

AMINO_ACIDS = "LAGVSERTIDPKQNFYMHWC"

# Dense bf16/fp16 peak (no sparsity), TFLOP/s, for MFU.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "4090": 165.0,
    "V100": 125.0,
}


@dataclass(frozen=True)
class Workload:
    """Paired inputs: proteins and their nucleotide sequences."""

    proteins: list[str]
    dna: list[str]


def make_workload(count: int, *, seed: int = 0, max_aa: int = 166) -> Workload:
    """Proteins of 500-bp chunks: 70 % full length, the rest shorter (tails)."""
    rng = random.Random(seed)
    proteins, dna = [], []
    for _ in range(count):
        length = max_aa if rng.random() < 0.7 else rng.randint(20, max_aa)
        proteins.append("".join(rng.choice(AMINO_ACIDS) for _ in range(length)))
        dna.append("".join(rng.choice("ACGT") for _ in range(3 * length + 1)))
    return Workload(proteins, dna)


def load(kind: str, path: Path, *, device: str, precision: str) -> Encoder:
    """Load an encoder, silencing the demo-model warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        return load_encoder(kind, path, device=device, precision=precision)


# ------------------------------------------------------------------ builders
def write_dnabert(folder: Path, **dims: int) -> Path:
    """A DNABERT-S folder with random weights (safetensors) and the demo tokenizer.

    ``dims`` are :func:`virnucpro_app.models.demo_weights.dnabert_config` arguments.
    """
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = dnabert_config(**dims)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(dnabert_demo_state(config, seed=0), str(folder / "model.safetensors"))
    write_dna_tokenizer(folder / "tokenizer.json")
    return folder


def write_esm(path: Path, *, layers: int, dim: int, heads: int) -> Path:
    """A fair-esm ESM-2 file with random weights."""
    return write_esm2_file(path, num_layers=layers, embed_dim=dim, num_heads=heads)


# ----------------------------------------------------------------- baselines
class OneAtATimeDnabert:
    """The original's DNABERT-S use: one sequence per forward, fp32, plain math."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        import json

        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.config = json.loads((folder / "config.json").read_text())
        raw = load_file(str(folder / "model.safetensors"), device=device)
        self.w = {k: v.float() for k, v in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.device = device
        heads = int(self.config["num_attention_heads"])
        self.slopes = torch.tensor(alibi_slopes(heads), device=device)

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        w = self.w
        return F.layer_norm(
            x, (x.shape[-1],), w[f"{name}.weight"], w[f"{name}.bias"], 1e-12
        )

    def embed_one(self, sequence: str) -> tuple[torch.Tensor, int]:
        ids = torch.tensor(self.tokenizer.encode(sequence).ids, device=self.device)
        w, cfg = self.w, self.config
        heads, inner = int(cfg["num_attention_heads"]), int(cfg["intermediate_size"])
        x = w["embeddings.word_embeddings.weight"][ids]
        x = self._ln(
            x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm"
        )
        length, hidden = x.shape
        hd = hidden // heads
        pos = torch.arange(length, device=self.device)
        bias = -self.slopes[:, None, None] * (pos[None, :] - pos[:, None]).abs()
        for n in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{n}."
            qkv = F.linear(
                x,
                w[p + "attention.self.Wqkv.weight"],
                w[p + "attention.self.Wqkv.bias"],
            )
            q, k, v = (
                qkv.view(length, 3, heads, hd)[:, i].transpose(0, 1) for i in range(3)
            )
            probs = (q @ k.transpose(1, 2) / math.sqrt(hd) + bias).softmax(-1)
            mixed = (probs @ v).transpose(0, 1).reshape(length, hidden)
            dense = F.linear(
                mixed,
                w[p + "attention.output.dense.weight"],
                w[p + "attention.output.dense.bias"],
            )
            x = self._ln(dense + x, p + "attention.output.LayerNorm")
            g = F.linear(x, w[p + "mlp.gated_layers.weight"])
            u = F.gelu(g[:, :inner]) * g[:, inner:]
            x = self._ln(
                F.linear(u, w[p + "mlp.wo.weight"], w[p + "mlp.wo.bias"]) + x,
                p + "mlp.layernorm",
            )
        return x.mean(0), length

    def embed(self, sequences: list[str]) -> tuple[torch.Tensor, int]:
        rows, tokens = [], 0
        with torch.inference_mode():
            for s in sequences:
                row, n = self.embed_one(s)
                rows.append(row)
                tokens += n
        return torch.stack(rows).cpu(), tokens


def fair_esm_model(
    path: Path | None = None,
    *,
    layers: int = 0,
    dim: int = 0,
    heads: int = 0,
    device: str = "cpu",
) -> torch.nn.Module:
    """fair-esm's ESM2, from a file (its own loader) or built random on ``device``."""
    import esm

    if path is not None:
        with torch.serialization.safe_globals([argparse.Namespace]):
            model, _ = esm.pretrained.load_model_and_alphabet_local(str(path))
        return model.eval().to(device)
    with torch.device(device):
        model = esm.ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads)
    return model.eval()


def fair_esm_embed(
    model: torch.nn.Module, sequences: list[str], *, device: str
) -> tuple[torch.Tensor, int]:
    """VirNucPro's extract_esm: 2048-token batches, residue mean, fp32 output."""
    import esm

    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    labels = [str(i) for i in range(len(sequences))]
    batches = esm.FastaBatchedDataset(labels, sequences).get_batch_indices(
        2048, extra_toks_per_seq=1
    )
    converter = alphabet.get_batch_converter()
    layer = model.num_layers
    out: dict[int, torch.Tensor] = {}
    tokens = 0
    with torch.inference_mode():
        for batch in batches:
            _, strs, toks = converter([(labels[i], sequences[i]) for i in batch])
            reps = model(toks.to(device), repr_layers=[layer])["representations"][layer]
            for row, (index, seq) in enumerate(zip(batch, strs, strict=True)):
                out[index] = (
                    reps[row, 1 : min(1024, len(seq)) + 1].float().mean(0).cpu()
                )
                tokens += len(seq) + 2
    return torch.stack([out[i] for i in range(len(sequences))]), tokens


def fair_esm_state_for_ours(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """fair-esm's state dict restricted to the tensors our ESM-2 takes."""
    from virnucpro_app.models.esm2_files import Esm2Config

    config = Esm2Config(model.num_layers, model.embed_dim, model.attention_heads)
    wanted = config.expected_shapes()
    return {k: v for k, v in model.state_dict().items() if k in wanted}


# ------------------------------------------------------------------- measure
def timed(
    func: Callable[[], tuple[torch.Tensor, int]], *, device: str, repeat: int = 1
) -> tuple[torch.Tensor, int, float]:
    """Best of ``repeat`` runs: (result, tokens, seconds), synchronised on CUDA."""
    best = float("inf")
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        result, tokens = func()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return result, tokens, best


def esm_flops(lengths: list[int], *, layers: int, dim: int) -> float:
    """Forward FLOPs: 2 x matmul params per token + attention scores and mixing."""
    params = layers * (4 * dim * dim + 2 * 4 * dim * dim)
    return sum(2 * params * n + 4 * layers * dim * n * n for n in lengths)


def dnabert_flops(lengths: list[int], *, layers: int, dim: int, inner: int) -> float:
    """Forward FLOPs of DNABERT-S (QKV, out, gated MLP) plus attention."""
    params = layers * (4 * dim * dim + 3 * dim * inner)
    return sum(2 * params * n + 4 * layers * dim * n * n for n in lengths)


def peak_tflops(override: float | None) -> float | None:
    """bf16 dense peak of the current GPU (from its name), or ``override``."""
    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model FLOP utilisation in percent of ``peak`` TFLOP/s (``None`` without it)."""
    return 100 * flops / seconds / (peak * 1e12) if peak else None


def row(
    label: str, sequences: int, tokens: int, seconds: float, utilisation: float | None
) -> str:
    """One result line."""
    text = f"  {label:<44} {sequences / seconds:>10,.1f} seq/s"
    text += f" {tokens / seconds:>12,.0f} tok/s"
    if utilisation is not None:
        text += f"  MFU {utilisation:5.1f} %"
    return text


@dataclass(frozen=True)
class Settings:
    """Where and how much a real-size comparison runs."""

    device: str
    peak: float | None
    baseline_count: int


# ------------------------------------------------------ real-size on a device
@dataclass(frozen=True)
class RealSize:
    """Architectures to build with random weights (defaults: the published sizes)."""

    esm_layers: int = 36
    esm_dim: int = 2560
    esm_heads: int = 40
    dnabert_layers: int = 12
    dnabert_dim: int = 768
    dnabert_heads: int = 12
    dnabert_inner: int = 3072
    dnabert_vocab: int = 4096


SMOKE_SIZE = RealSize(2, 64, 4, 2, 48, 6, 96, 128)


def _run_ours(
    encoder: Encoder, sequences: list[str], tokens: int, settings: Settings
) -> tuple[torch.Tensor, float]:
    ids = [str(i) for i in range(len(sequences))]
    encoder.embed(ids[:64], sequences[:64])  # warm-up
    out, _, seconds = timed(
        lambda: (encoder.embed(ids, sequences), tokens), device=settings.device
    )
    return out, seconds


def esm_realsize(
    size: RealSize, workload: Workload, settings: Settings
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """ESM-2 of ``size``: ours bf16 vs fair-esm fp32 and fp16 on one device.

    Ours in bf16 runs the whole workload; the slow fp32 runs take the first
    ``baseline_count`` proteins. Returns the printed lines and, per run, the
    embeddings of those first proteins (for agreement checks).
    """
    from virnucpro_app.models.esm2 import Esm2Encoder
    from virnucpro_app.models.esm2_files import Esm2Config

    device = settings.device
    torch.manual_seed(0)
    reference = fair_esm_model(
        layers=size.esm_layers, dim=size.esm_dim, heads=size.esm_heads, device=device
    )
    state = fair_esm_state_for_ours(reference)
    config = Esm2Config(size.esm_layers, size.esm_dim, size.esm_heads)
    subset = workload.proteins[: settings.baseline_count]
    lines, results = [], {}

    def flops(seqs: list[str]) -> float:
        lengths = [len(s) + 2 for s in seqs]
        return esm_flops(lengths, layers=size.esm_layers, dim=size.esm_dim)

    for precision in ("bf16", "fp32"):
        ours = Esm2Encoder.from_state(config, state, device=device, precision=precision)
        seqs = workload.proteins if precision == "bf16" else subset
        tokens = sum(len(p) + 2 for p in seqs)
        out, seconds = _run_ours(ours, seqs, tokens, settings)
        results[f"ours {precision}"] = out[: settings.baseline_count]
        label = f"ours {precision} ({ours.info.attention})"
        utilisation = mfu(flops(seqs), seconds, settings.peak)
        lines.append(row(label, len(seqs), tokens, seconds, utilisation))
        del ours
    # fair-esm in fp16 fails on the CPU (a float/half bmm): GPU only.
    for precision in ("fp32", "fp16") if device.startswith("cuda") else ("fp32",):
        # .half() converts in place: fp32 must run first
        model = reference if precision == "fp32" else reference.half()
        fair_esm_embed(model, subset[:16], device=device)  # warm-up
        out, tokens, seconds = timed(
            lambda m=model: fair_esm_embed(m, subset, device=device), device=device
        )
        results[f"fair-esm {precision}"] = out
        label = f"fair-esm {precision} (2048-token batches)"
        utilisation = mfu(flops(subset), seconds, settings.peak)
        lines.append(row(label, len(subset), tokens, seconds, utilisation))
    del reference
    return lines, results


def dnabert_realsize(
    size: RealSize, workload: Workload, settings: Settings, tmp: Path
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """DNABERT-S of ``size``: ours bf16/fp32 vs one sequence at a time fp32."""
    folder = write_dnabert(
        tmp / "dnabert-realsize",
        hidden_size=size.dnabert_dim,
        num_layers=size.dnabert_layers,
        num_heads=size.dnabert_heads,
        intermediate_size=size.dnabert_inner,
        vocab_size=size.dnabert_vocab,
    )
    lines, results = [], {}
    subset = workload.dna[: settings.baseline_count]

    def flops(lengths: list[int]) -> float:
        return dnabert_flops(
            lengths,
            layers=size.dnabert_layers,
            dim=size.dnabert_dim,
            inner=size.dnabert_inner,
        )

    for precision in ("bf16", "fp32"):
        ours = load("dnabert", folder, device=settings.device, precision=precision)
        seqs = workload.dna if precision == "bf16" else subset
        ids = [str(i) for i in range(len(seqs))]
        lengths = [len(t) for t in ours.tokenize(ids, seqs)]  # type: ignore[attr-defined]
        out, seconds = _run_ours(ours, seqs, sum(lengths), settings)
        results[f"ours {precision}"] = out[: settings.baseline_count]
        label = f"ours {precision} ({ours.info.attention})"
        utilisation = mfu(flops(lengths), seconds, settings.peak)
        lines.append(row(label, len(seqs), sum(lengths), seconds, utilisation))
        del ours
    baseline = OneAtATimeDnabert(folder, device=settings.device)
    baseline.embed(subset[:8])
    out, tokens, seconds = timed(lambda: baseline.embed(subset), device=settings.device)
    results["one at a time fp32"] = out
    lengths = [len(baseline.tokenizer.encode(s).ids) for s in subset]
    label = "one sequence at a time fp32 (original)"
    utilisation = mfu(flops(lengths), seconds, settings.peak)
    lines.append(row(label, len(subset), tokens, seconds, utilisation))
    return lines, results


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest per-row cosine similarity."""
    return F.cosine_similarity(a.float(), b.float(), dim=1).min().item()
