"""Tiny models in the real on-disk formats, and the reference implementations.

Builders reuse ``virnucpro_app.models.demo_weights`` (the formats users get from
``models make-demo``) and add the variants the demo does not write
(``pytorch_model.bin``, ``bert.`` prefix). The references are deliberately plain:

- ESM-2: fair-esm's own model (loaded by fair-esm's own loader) with VirNucPro's
  batching of 2048 tokens and its pooling ``rep[i, 1 : min(1024, len) + 1].mean(0)``;
- DNABERT-S: one sequence at a time, written here from the architecture notes
  (MosaicBERT's fp32 PyTorch path, ALiBi), mean over all tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

from virnucpro_app.models import DemoModelWarning, Encoder, load_encoder
from virnucpro_app.models.demo_weights import (
    dnabert_config,
    dnabert_demo_state,
    write_dna_tokenizer,
    write_dnabert_folder,
    write_esm2_file,
)

AMINO_ACIDS = "LAGVSERTIDPKQNFYMHWC"
BASES = "ACGT"


def write_tiny_esm(
    directory: Path,
    *,
    num_layers: int = 2,
    embed_dim: int = 80,
    num_heads: int = 5,
    seed: int = 0,
    name: str = "esm2_t2_tiny.pt",
) -> Path:
    """A fair-esm ``.pt`` of a tiny ESM-2 (+ its contact-regression file)."""
    return write_esm2_file(
        directory / name,
        num_layers=num_layers,
        embed_dim=embed_dim,
        num_heads=num_heads,
        seed=seed,
    )


def write_tiny_dnabert(
    directory: Path,
    *,
    num_heads: int = 6,
    hidden_size: int = 48,
    intermediate_size: int = 80,
    num_layers: int = 2,
    weights: str = "safetensors",
    prefix: str = "",
    seed: int = 0,
) -> Path:
    """A DNABERT-S style folder; ``weights`` is ``safetensors`` or ``bin``."""
    dims = {
        "num_heads": num_heads,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_layers": num_layers,
    }
    if weights == "safetensors" and not prefix:
        return write_dnabert_folder(directory, seed=seed, **dims)
    directory.mkdir(parents=True, exist_ok=True)
    config = dnabert_config(**dims)
    (directory / "config.json").write_text(json.dumps(config))
    state = {
        f"{prefix}{k}": v for k, v in dnabert_demo_state(config, seed=seed).items()
    }
    if prefix:
        # A masked-LM checkpoint also carries its head; loaders must ignore it.
        state["cls.predictions.bias"] = torch.zeros(int(config["vocab_size"]))
    if weights == "bin":
        torch.save(state, directory / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(state, str(directory / "model.safetensors"))
    write_dna_tokenizer(directory / "tokenizer.json", seed=seed)
    return directory


def load_quietly(
    kind: str, path: Path | str, *, device: str = "cpu", precision: str = "fp32"
) -> Encoder:
    """Load an encoder from a demo-marked file without the demo warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        return load_encoder(kind, path, device=device, precision=precision)


# ---------------------------------------------------------------- ESM-2 reference
def load_fair_esm(path: Path) -> tuple[torch.nn.Module, object]:
    """fair-esm's own loader (it needs the contact-regression file beside ``path``)."""
    import esm

    with torch.serialization.safe_globals([argparse.Namespace]):
        model, alphabet = esm.pretrained.load_model_and_alphabet_local(str(path))
    return model.eval(), alphabet


def fair_esm_embed(
    model: torch.nn.Module, alphabet: object, sequences: list[str]
) -> torch.Tensor:
    """VirNucPro's ``extract_esm``: fair-esm batches of 2048 tokens, residue mean."""
    import esm

    labels = [f"s{i}" for i in range(len(sequences))]
    dataset = esm.FastaBatchedDataset(labels, sequences)
    batches = dataset.get_batch_indices(2048, extra_toks_per_seq=1)
    converter = alphabet.get_batch_converter()  # type: ignore[attr-defined]
    layer = model.num_layers  # type: ignore[attr-defined]
    out: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for batch in batches:
            _, strs, tokens = converter([(labels[i], sequences[i]) for i in batch])
            reps = model(tokens, repr_layers=[layer])["representations"][layer]
            for row, (index, seq) in enumerate(zip(batch, strs, strict=True)):
                out[index] = reps[row, 1 : min(1024, len(seq)) + 1].mean(0)
    return torch.stack([out[i] for i in range(len(sequences))])


# ------------------------------------------------------------ DNABERT-S reference
def _alibi_slopes(n: int) -> list[float]:
    """MosaicBERT's rule, copied from its description (not from our module)."""

    def pow2(m: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(m) - 3)))
        return [start * start**i for i in range(m)]

    if math.log2(n).is_integer():
        return pow2(n)
    m = 2 ** math.floor(math.log2(n))
    return pow2(m) + _alibi_slopes(2 * m)[0::2][: n - m]


class ReferenceDnabert:
    """DNABERT-S forward for ONE sequence, no batching, no mask, fp32."""

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.config = json.loads((folder / "config.json").read_text())
        weights = folder / "model.safetensors"
        if weights.exists():
            raw = load_file(str(weights))
        else:
            raw = torch.load(folder / "pytorch_model.bin", weights_only=True)
        self.w = {k.removeprefix("bert."): v.float() for k, v in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        eps = float(self.config["layer_norm_eps"])
        dim = (x.shape[-1],)
        return F.layer_norm(
            x, dim, self.w[f"{name}.weight"], self.w[f"{name}.bias"], eps
        )

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        bias = self.w.get(f"{name}.bias")
        return F.linear(x, self.w[f"{name}.weight"], bias)

    def embed_one(self, sequence: str) -> torch.Tensor:
        ids = torch.tensor(self.tokenizer.encode(sequence).ids)
        heads = int(self.config["num_attention_heads"])
        inner = int(self.config["intermediate_size"])
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]
        x = self._ln(
            x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm"
        )
        length, hidden = x.shape
        head_dim = hidden // heads
        pos = torch.arange(length)
        slopes = torch.tensor(_alibi_slopes(heads))
        bias = -slopes[:, None, None] * (pos[None, :] - pos[:, None]).abs()
        for n in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{n}."
            qkv = self._lin(x, p + "attention.self.Wqkv").view(
                length, 3, heads, head_dim
            )
            q, k, v = (qkv[:, i].transpose(0, 1) for i in range(3))
            scores = q @ k.transpose(1, 2) / math.sqrt(head_dim) + bias
            mixed = (scores.softmax(-1) @ v).transpose(0, 1).reshape(length, hidden)
            x = self._ln(
                self._lin(mixed, p + "attention.output.dense") + x,
                p + "attention.output.LayerNorm",
            )
            g = self._lin(x, p + "mlp.gated_layers")
            u = F.gelu(g[:, :inner]) * g[:, inner:]
            x = self._ln(self._lin(u, p + "mlp.wo") + x, p + "mlp.layernorm")
        return x.mean(0)

    def embed(self, sequences: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([self.embed_one(s) for s in sequences])
