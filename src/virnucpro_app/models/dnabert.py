"""DNABERT-S in plain PyTorch, on packed batches, from a local Hugging Face folder.

The architecture is MosaicBERT's ``BertModel`` (``bert_layers.py`` of DNABERT-S,
its fp32 PyTorch path), written out:

- embeddings ``x = LayerNorm(word[ids] + token_type[0])`` (no position
  embeddings: position enters only through ALiBi);
- post-LayerNorm layers (eps from config, 1e-12):
  ``x = LN(dense(attn(x)) + x)`` with ``qkv = Wqkv(x)`` split as
  ``(3, heads, head_dim)`` and the ALiBi bias ``-slope_h * |i - j|`` (symmetric);
  then the gated-GELU MLP ``x = LN(wo(gelu_erf(g[:, :I]) * g[:, I:]) + x)`` with
  ``g = gated_layers(x)`` (no bias);
- ALiBi slopes by MosaicBERT's rule (:func:`alibi_slopes`), including its rule
  for head counts that are not powers of two.

Pooling as VirNucPro (``extract_DNABERT_S``): mean of the last hidden states over
all tokens of the sequence, ``[CLS]`` and ``[SEP]`` included (no padding exists in
a packed batch). Each sequence's positions restart at 0, as if run alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

from virnucpro_app.device import plan_device, torch_dtype
from virnucpro_app.models import EncoderKind, ModelInfo, WeightSource
from virnucpro_app.models.attention import (
    AttentionBackend,
    AttentionInputs,
    attend,
    choose_backend,
    prepare_attention,
)
from virnucpro_app.models.dnabert_files import DnabertConfig, read_dnabert_folder
from virnucpro_app.models.packing import PackedBatch, pool_mean
from virnucpro_app.models.runner import PooledEncoder
from virnucpro_app.models.weights import embedding_to_assign

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from tokenizers import Tokenizer


#: Default ``tokens_per_batch`` per device type.
DEFAULT_TOKENS_PER_BATCH = {"cpu": 8192, "cuda": 32768}


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi slopes per head, MosaicBERT's ``_get_alibi_head_slopes``.

    For ``n`` a power of two: ``start = 2**(-8/n)``, slope ``i`` = ``start**(i+1)``.
    Otherwise the slopes of the largest power of two ``m < n``, followed by every
    other slope of ``2m`` heads (``[0::2]``), ``n - m`` of them.

    Example:
        >>> alibi_slopes(2)
        [0.0625, 0.00390625]
    """

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return (
        power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]
    )


class DnabertLayer(nn.Module):
    """One post-LayerNorm MosaicBERT layer."""

    def __init__(self, config: DnabertConfig) -> None:
        super().__init__()
        hidden, inner, eps = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        )
        self.num_heads = config.num_heads
        self.intermediate_size = inner
        self.qkv_proj = nn.Linear(hidden, 3 * hidden)
        self.out_proj = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.gated_layers = nn.Linear(hidden, 2 * inner, bias=False)
        self.wo = nn.Linear(inner, hidden)
        self.mlp_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, attention: AttentionInputs) -> torch.Tensor:
        """Apply the layer to packed ``[T, H]`` hidden states."""
        total, hidden = x.shape
        qkv = self.qkv_proj(x).view(total, 3, self.num_heads, hidden // self.num_heads)
        q, k, v = qkv.unbind(1)
        mixed = attend(q, k, v, attention).reshape(total, hidden)
        x = self.attention_norm(self.out_proj(mixed) + x)
        gates = self.gated_layers(x)
        inner = self.intermediate_size
        out: torch.Tensor = self.mlp_norm(
            self.wo(F.gelu(gates[:, :inner]) * gates[:, inner:]) + x
        )
        return out


class DnabertModel(nn.Module):
    """DNABERT-S trunk (no pooler) on packed batches."""

    def __init__(self, config: DnabertConfig) -> None:
        super().__init__()
        self.config = config
        self.word_embeddings = embedding_to_assign(
            config.vocab_size, config.hidden_size
        )
        self.token_type_embeddings = embedding_to_assign(
            config.type_vocab_size, config.hidden_size
        )
        self.embedding_norm = nn.LayerNorm(
            config.hidden_size, eps=config.layer_norm_eps
        )
        self.layers = nn.ModuleList(
            DnabertLayer(config) for _ in range(config.num_layers)
        )

    def forward(self, batch: PackedBatch, attention: AttentionInputs) -> torch.Tensor:
        """Last hidden states ``[T, H]``."""
        x: torch.Tensor = self.word_embeddings(batch.token_ids)
        x = self.embedding_norm(x + self.token_type_embeddings.weight[0])
        for layer in self.layers:
            x = layer(x, attention)
        return x


def _our_name(name: str) -> str:
    """Published (HF) name -> :class:`DnabertModel` name."""
    if name.startswith("embeddings.LayerNorm."):
        return name.replace("embeddings.LayerNorm.", "embedding_norm.", 1)
    if name.startswith("embeddings."):
        return name.removeprefix("embeddings.")
    replacements = (
        ("encoder.layer.", "layers."),
        (".attention.self.Wqkv.", ".qkv_proj."),
        (".attention.output.dense.", ".out_proj."),
        (".attention.output.LayerNorm.", ".attention_norm."),
        (".mlp.gated_layers.", ".gated_layers."),
        (".mlp.wo.", ".wo."),
        (".mlp.layernorm.", ".mlp_norm."),
    )
    for old, new in replacements:
        name = name.replace(old, new)
    return name


def build_model(
    config: DnabertConfig,
    state: dict[str, torch.Tensor],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DnabertModel:
    """Build :class:`DnabertModel` from published weights (checked, no prefix).

    Returns:
        The model in eval mode.
    """
    ours = {_our_name(k): v.to(device=device, dtype=dtype) for k, v in state.items()}
    with torch.device("meta"):
        model = DnabertModel(config)
    model.load_state_dict(ours, strict=True, assign=True)
    return model.eval()


class DnabertEncoder(PooledEncoder):
    """DNABERT-S embeddings the VirNucPro way (see module docstring)."""

    TOKENS_PER_BATCH = DEFAULT_TOKENS_PER_BATCH

    def __init__(
        self,
        model: DnabertModel,
        tokenizer: Tokenizer,
        info: ModelInfo,
        device: torch.device,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._info = info
        self._device = device
        self._backend = AttentionBackend(info.attention)
        self._slopes = torch.tensor(
            alibi_slopes(model.config.num_heads), dtype=torch.float32, device=device
        )

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str],
        *,
        device: str = "auto",
        precision: str = "auto",
    ) -> Self:
        """Load a DNABERT-S folder onto a device.

        Args:
            model: The folder (``config.json``, weights, ``tokenizer.json``).
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

        Raises:
            ModelLoadError: Missing or damaged files, or weights that do not match.
            PipelineError: The device or precision cannot be used.
        """
        plan = plan_device(device, precision)
        files = read_dnabert_folder(Path(model))
        source = WeightSource(str(files.folder), files.identity, files.is_demo)
        source.warn_if_demo()
        dtype = torch_dtype(plan.precision)
        target = torch.device(plan.device)
        net = build_model(files.config, files.state, device=target, dtype=dtype)
        backend = choose_backend(target, dtype, alibi=True)
        info = ModelInfo(
            kind=EncoderKind.DNABERT.value,
            architecture="DNABERT-S (MosaicBERT, ALiBi)",
            path=source.path,
            identity=source.identity,
            num_layers=files.config.num_layers,
            hidden_size=files.config.hidden_size,
            num_heads=files.config.num_heads,
            embedding_dim=files.config.hidden_size,
            device=plan.device,
            precision=plan.precision.value,
            attention=backend.value,
            demo=source.demo,
        )
        return cls(net, files.tokenizer, info, target)

    def tokenize(
        self, ids: Sequence[str], sequences: Sequence[str]
    ) -> list[np.ndarray]:
        """BPE token ids of each sequence, ``[CLS]`` and ``[SEP]`` included."""
        del ids  # every string tokenizes (unknown letters become [UNK])
        encodings = self._tokenizer.encode_batch(list(sequences))
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def pool_span(self, num_tokens: int) -> tuple[int, int]:
        """All tokens, ``[CLS]`` and ``[SEP]`` included."""
        return 0, num_tokens

    def forward_pooled(self, batch: PackedBatch) -> torch.Tensor:
        """``[B, H]`` float32 mean embeddings of a packed batch on the device."""
        dtype = self._model.word_embeddings.weight.dtype
        attention = prepare_attention(
            batch, self._backend, dtype=dtype, alibi_slopes=self._slopes
        )
        return pool_mean(self._model(batch, attention), batch)
