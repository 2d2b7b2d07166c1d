"""Random, seeded weights of the two language models in their real on-disk formats.

What the demo models, the tests and the benchmarks are made of, so that they
exercise the real loading code:

- :func:`write_esm2_file`: an ESM-2 in the published fair-esm layout
  (``{"model": {"encoder.sentence_encoder.…": …}, "cfg": {"model":
  argparse.Namespace(...)}}``, plus ``-contact-regression.pt``); fair-esm's own
  loader reads it;
- :func:`write_dnabert_folder`: a DNABERT-S style Hugging Face folder
  (``config.json``, ``model.safetensors``, ``tokenizer.json`` with a small DNA BPE
  built with the ``tokenizers`` library, ``tokenizer_config.json``).

Every file carries the :data:`DEMO_MARKER`, and loading one warns that its
outputs are NOT BIOLOGY.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import os

#: Marker written into every demo file.
DEMO_MARKER = "NOT BIOLOGY: random weights, for demos and tests only"
#: DNABERT-S special tokens and their ids (the real tokenizer's order).
DNABERT_SPECIALS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")


def _random(
    shape: tuple[int, ...], generator: torch.Generator, std: float
) -> torch.Tensor:
    return torch.randn(shape, generator=generator) * std


def _linear(
    state: dict[str, torch.Tensor],
    name: str,
    out_in: tuple[int, int],
    generator: torch.Generator,
    *,
    bias: bool = True,
) -> None:
    state[f"{name}.weight"] = _random(out_in, generator, out_in[1] ** -0.5)
    if bias:
        state[f"{name}.bias"] = _random((out_in[0],), generator, 0.1)


def _norm(
    state: dict[str, torch.Tensor], name: str, dim: int, generator: torch.Generator
) -> None:
    state[f"{name}.weight"] = 1 + _random((dim,), generator, 0.1)
    state[f"{name}.bias"] = _random((dim,), generator, 0.1)


def esm2_demo_state(
    *, num_layers: int, embed_dim: int, num_heads: int, seed: int
) -> dict[str, torch.Tensor]:
    """Random ESM-2 weights with fair-esm's names (no prefixes, no contact head).

    Args:
        num_layers: Layers.
        embed_dim: Width.
        num_heads: Heads (must divide ``embed_dim``).
        seed: Random seed.

    Returns:
        ``name -> tensor``, every tensor fair-esm's ``ESM2`` holds except
        ``contact_head.*``.
    """
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {
        "embed_tokens.weight": _random((33, embed_dim), gen, 1.0)
    }
    head_dim = embed_dim // num_heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    for index in range(num_layers):
        p = f"layers.{index}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            _linear(state, f"{p}self_attn.{proj}", (embed_dim, embed_dim), gen)
        state[f"{p}self_attn.rot_emb.inv_freq"] = inv_freq.clone()
        _norm(state, f"{p}self_attn_layer_norm", embed_dim, gen)
        _linear(state, f"{p}fc1", (4 * embed_dim, embed_dim), gen)
        _linear(state, f"{p}fc2", (embed_dim, 4 * embed_dim), gen)
        _norm(state, f"{p}final_layer_norm", embed_dim, gen)
    _norm(state, "emb_layer_norm_after", embed_dim, gen)
    _linear(state, "lm_head.dense", (embed_dim, embed_dim), gen)
    _norm(state, "lm_head.layer_norm", embed_dim, gen)
    state["lm_head.weight"] = state["embed_tokens.weight"].clone()
    state["lm_head.bias"] = _random((33,), gen, 0.1)
    return state


def write_esm2_file(
    path: str | os.PathLike[str],
    *,
    num_layers: int = 2,
    embed_dim: int = 64,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a random ESM-2 in the published fair-esm ``.pt`` layout.

    Also writes ``<stem>-contact-regression.pt`` next to it, which fair-esm's
    own loader requires (ours does not).

    Args:
        path: Target file; its name should start with ``esm2`` (fair-esm picks
            the ESM-2 code path from the name).
        num_layers: Layers.
        embed_dim: Width.
        num_heads: Heads.
        seed: Random seed.
    """
    target = Path(path)
    state = esm2_demo_state(
        num_layers=num_layers, embed_dim=embed_dim, num_heads=num_heads, seed=seed
    )
    trunk = ("embed_tokens.", "layers.", "emb_layer_norm_after.")
    model = {
        (f"encoder.sentence_encoder.{k}" if k.startswith(trunk) else f"encoder.{k}"): v
        for k, v in state.items()
    }
    cfg = argparse.Namespace(
        arch="esm2",
        encoder_layers=num_layers,
        encoder_embed_dim=embed_dim,
        encoder_ffn_embed_dim=4 * embed_dim,
        encoder_attention_heads=num_heads,
        token_dropout=True,
        virnucpro_demo=DEMO_MARKER,
    )
    gen = torch.Generator().manual_seed(seed + 1)
    regression = {
        "contact_head.regression.weight": _random(
            (1, num_layers * num_heads), gen, 0.1
        ),
        "contact_head.regression.bias": torch.zeros(1),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": model, "cfg": {"model": cfg}, "virnucpro_demo": DEMO_MARKER}
    # torch.save on purpose: this reproduces the published fair-esm pickle layout,
    # from tensors we just made, so the real loaders (ours and fair-esm's) run.
    torch.save(payload, target)  # noqa: TID251
    regression_path = target.with_name(f"{target.stem}-contact-regression.pt")
    torch.save({"model": regression}, regression_path)  # noqa: TID251
    return target


def dnabert_config(
    *,
    hidden_size: int = 48,
    num_layers: int = 2,
    num_heads: int = 6,
    intermediate_size: int = 96,
    vocab_size: int = 96,
) -> dict[str, object]:
    """A ``config.json`` in DNABERT-S's layout, marked as a demo.

    Args:
        hidden_size: Width.
        num_layers: Layers.
        num_heads: Heads.
        intermediate_size: GLU width (``gated_layers`` is twice that).
        vocab_size: Embedding rows (at least the tokenizer's vocabulary).
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "alibi_starting_size": 512,
        "attention_probs_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": intermediate_size,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "num_attention_heads": num_heads,
        "num_hidden_layers": num_layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": 2,
        "vocab_size": vocab_size,
        "virnucpro_demo": DEMO_MARKER,
    }


def dnabert_demo_state(
    config: dict[str, object], *, seed: int
) -> dict[str, torch.Tensor]:
    """Random DNABERT-S weights with the published names (no ``bert.`` prefix).

    Returns:
        ``name -> tensor`` including the (unused) pooler.
    """
    hidden = int(str(config["hidden_size"]))
    inner = int(str(config["intermediate_size"]))
    vocab = int(str(config["vocab_size"]))
    gen = torch.Generator().manual_seed(seed)
    state = {
        "embeddings.word_embeddings.weight": _random((vocab, hidden), gen, 1.0),
        "embeddings.token_type_embeddings.weight": _random((2, hidden), gen, 0.1),
    }
    _norm(state, "embeddings.LayerNorm", hidden, gen)
    for index in range(int(str(config["num_hidden_layers"]))):
        p = f"encoder.layer.{index}."
        _linear(state, f"{p}attention.self.Wqkv", (3 * hidden, hidden), gen)
        _linear(state, f"{p}attention.output.dense", (hidden, hidden), gen)
        _norm(state, f"{p}attention.output.LayerNorm", hidden, gen)
        _linear(state, f"{p}mlp.gated_layers", (2 * inner, hidden), gen, bias=False)
        _linear(state, f"{p}mlp.wo", (hidden, inner), gen)
        _norm(state, f"{p}mlp.layernorm", hidden, gen)
    _linear(state, "pooler.dense", (hidden, hidden), gen)
    return state


def write_dna_tokenizer(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a small DNA BPE ``tokenizer.json`` built with the ``tokenizers`` library.

    Vocabulary: the five specials (``[UNK]=0, [CLS]=1, [SEP]=2, [PAD]=3,
    [MASK]=4``), the four bases, all 16 dinucleotides and 48 seeded 4-mers;
    post-processor ``[CLS] $A [SEP]``, like DNABERT-S.

    Args:
        path: Target file.
        seed: Chooses the 4-mers.
    """
    from tokenizers import Tokenizer, models, processors

    bases = "ACGT"
    pairs = ["".join(p) for p in itertools.product(bases, repeat=2)]
    # Not cryptographic: a seeded choice of demo vocabulary.
    quads = random.Random(seed).sample(  # noqa: S311
        list(itertools.product(pairs, repeat=2)), 48
    )
    merges: list[tuple[str, str]] = [(a, b) for a in bases for b in bases]
    merges += [(a, b) for a, b in quads]
    vocab = {token: index for index, token in enumerate(DNABERT_SPECIALS)}
    for token in [*bases, *pairs, *(a + b for a, b in quads)]:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))  # noqa: S106
    tokenizer.add_special_tokens(list(DNABERT_SPECIALS))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)],
    )
    target = Path(path)
    tokenizer.save(str(target))
    return target


def write_dnabert_folder(
    directory: str | os.PathLike[str],
    *,
    seed: int = 0,
    **dims: int,
) -> Path:
    """Write a random DNABERT-S style folder (safetensors weights).

    Args:
        directory: Target folder (created).
        seed: Random seed.
        **dims: Overrides for :func:`dnabert_config`.
    """
    from safetensors.torch import save

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    config = dnabert_config(**dims)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = save(
        dnabert_demo_state(config, seed=seed),
        metadata={"format": "pt", "virnucpro_demo": DEMO_MARKER},
    )
    (folder / "model.safetensors").write_bytes(sorted_safetensors_metadata(weights))
    write_dna_tokenizer(folder / "tokenizer.json", seed=seed)
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "virnucpro_demo": DEMO_MARKER,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config) + "\n")
    return folder


def sorted_safetensors_metadata(data: bytes) -> bytes:
    """A safetensors file's bytes with its ``__metadata__`` keys in sorted order.

    safetensors keeps the metadata in a Rust ``HashMap``, whose order changes from
    one process to the next: the same seed gave the same weights in files of
    different bytes, so a rebuilt demo model changed its identity (the hash that
    run summaries and manifests record). The header keeps its length (same keys and
    values, padded with spaces as the format allows), so no data offset moves.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > size:  # pragma: no cover - the same keys and values, reordered
        msg = "sorted safetensors header is longer than the original"
        raise RuntimeError(msg)
    return data[:8] + text.ljust(size) + data[8 + size :]
