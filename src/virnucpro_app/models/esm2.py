"""ESM-2 in plain PyTorch, on packed batches, loaded from a fair-esm ``.pt`` file.

The forward pass is fair-esm 2.0.0's ``ESM2.forward`` (``esm/model/esm2.py``),
reorganised for packed batches, and equal to it in fp32 (tests compare the two):

- embeddings ``x = embed_tokens[ids]``; token dropout at inference: rows of
  ``<mask>`` zeroed, then ``x *= (1 - 0.15*0.8) / (1 - masked/length)`` per
  sequence (x0.88 without masks);
- pre-LayerNorm layers (eps 1e-5): ``x += out_proj(attn(LN(x)))`` with RoPE on
  the whole head (GPT-NeoX halves, positions from 0 at ``<cls>``, cos/sin in
  float32), then ``x += fc2(gelu_erf(fc1(LN(x))))``;
- ``emb_layer_norm_after`` at the end: VirNucPro's representation of the last
  layer is taken after it.

q, k and v are one fused matmul (``q_proj``, ``k_proj``, ``v_proj`` concatenated
at load). Pooling (``Esm2Encoder.pool_span``): mean over residues only, the first
``min(length, 1024)`` of them, as VirNucPro's ``t[i, 1:min(1024, len)+1].mean(0)``;
the forward pass still sees the whole protein.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

from virnucpro_app.device import plan_device, torch_dtype
from virnucpro_app.errors import InputError
from virnucpro_app.identity import file_identity
from virnucpro_app.models import EncoderKind, ModelInfo, WeightSource
from virnucpro_app.models.attention import (
    AttentionBackend,
    AttentionInputs,
    attend,
    choose_backend,
    prepare_attention,
)
from virnucpro_app.models.esm2_files import (
    Esm2Config,
    read_esm2_file,
    resolve_esm2_path,
)
from virnucpro_app.models.packing import PackedBatch, pool_mean
from virnucpro_app.models.runner import PooledEncoder
from virnucpro_app.models.weights import embedding_to_assign

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence


#: fair-esm's ESM-1b alphabet (``Alphabet.from_architecture("ESM-1b")``), in id order.
ESM_TOKENS = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F",
    "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
    "<null_1>", "<mask>",
)  # fmt: skip
CLS_ID, EOS_ID = ESM_TOKENS.index("<cls>"), ESM_TOKENS.index("<eos>")
MASK_ID = ESM_TOKENS.index("<mask>")
#: VirNucPro averages at most this many residues (``t[i, 1 : min(1024, len) + 1]``).
MAX_POOLED_RESIDUES = 1024
# fair-esm: token dropout rescales by (1 - mask_ratio_train) at inference.
_MASK_RATIO_TRAIN = 0.15 * 0.8
_LAYER_NORM_EPS = 1e-5

_RESIDUE_IDS = np.full(256, -1, dtype=np.int64)
for _index, _token in enumerate(ESM_TOKENS):
    if len(_token) == 1:
        _RESIDUE_IDS[ord(_token)] = _index

#: Default ``tokens_per_batch`` per device type.
DEFAULT_TOKENS_PER_BATCH = {"cpu": 4096, "cuda": 16384}
_IN_MEMORY = WeightSource()


def tokenize_protein(seq_id: str, sequence: str) -> np.ndarray:
    """``[<cls>, residues..., <eos>]`` ids, as fair-esm's batch converter.

    Args:
        seq_id: Record ID, for the error message.
        sequence: One-letter amino-acid codes (upper case).

    Returns:
        int64 token ids.

    Raises:
        InputError: A character outside ESM-2's alphabet (fair-esm would fail too).
    """
    raw = np.frombuffer(sequence.encode("utf-8"), dtype=np.uint8)
    ids = _RESIDUE_IDS[raw]
    if len(raw) != len(sequence) or (ids < 0).any():
        bad = next(
            (pos, ch)
            for pos, ch in enumerate(sequence)
            if not ch.isascii() or _RESIDUE_IDS[ord(ch)] < 0
        )
        raise InputError(
            f"record {seq_id!r}: character {bad[1]!r} at position {bad[0] + 1} is "
            "not an amino-acid letter ESM-2 knows (use upper-case one-letter codes)"
        )
    return np.concatenate(([CLS_ID], ids, [EOS_ID]))


def rotary_tables(
    positions: torch.Tensor, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE ``cos`` and ``sin`` ``[T, 1, head_dim]`` in float32 (fair-esm's tables).

    Args:
        positions: ``[T]`` position of each token within its sequence.
        head_dim: Width of one head (rotated whole).
    """
    exponent = torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim
    inv_freq = 1.0 / (10000**exponent)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]
    return emb.cos(), emb.sin()


def _apply_rotary(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> torch.Tensor:
    x32 = x.float()
    half = x32.shape[-1] // 2
    rotated = torch.cat((-x32[..., half:], x32[..., :half]), dim=-1)
    return (x32 * cos + rotated * sin).to(x.dtype)


class Esm2Layer(nn.Module):
    """One pre-LayerNorm transformer layer of ESM-2."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim, eps=_LAYER_NORM_EPS)
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.final_layer_norm = nn.LayerNorm(embed_dim, eps=_LAYER_NORM_EPS)
        self.fc1 = nn.Linear(embed_dim, 4 * embed_dim)
        self.fc2 = nn.Linear(4 * embed_dim, embed_dim)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        attention: AttentionInputs,
    ) -> torch.Tensor:
        """Apply the layer to packed ``[T, D]`` hidden states."""
        total = x.shape[0]
        qkv = self.qkv_proj(self.self_attn_layer_norm(x))
        q, k, v = qkv.view(total, 3, self.num_heads, self.head_dim).unbind(1)
        q, k = _apply_rotary(q, *rotary), _apply_rotary(k, *rotary)
        mixed = attend(q, k, v, attention).reshape(total, -1)
        x = x + self.out_proj(mixed)
        out: torch.Tensor = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return out


class Esm2Model(nn.Module):
    """ESM-2 encoder trunk (no LM or contact head) on packed batches."""

    def __init__(self, config: Esm2Config) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = embedding_to_assign(len(ESM_TOKENS), config.embed_dim)
        self.layers = nn.ModuleList(
            Esm2Layer(config.embed_dim, config.num_heads)
            for _ in range(config.num_layers)
        )
        self.emb_layer_norm_after = nn.LayerNorm(config.embed_dim, eps=_LAYER_NORM_EPS)

    def forward(self, batch: PackedBatch, attention: AttentionInputs) -> torch.Tensor:
        """Last-layer representations ``[T, D]`` (after the final LayerNorm)."""
        x = self.embed_tokens(batch.token_ids)
        if self.config.token_dropout:
            x = self._token_dropout(x, batch)
        rotary = rotary_tables(
            batch.positions, self.config.embed_dim // self.config.num_heads
        )
        for layer in self.layers:
            x = layer(x, rotary, attention)
        out: torch.Tensor = self.emb_layer_norm_after(x)
        return out

    @staticmethod
    def _token_dropout(x: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        is_mask = batch.token_ids == MASK_ID
        x = x.masked_fill(is_mask[:, None], 0.0)
        lengths = (batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]).float()
        masked = torch.zeros_like(lengths).index_add_(
            0, batch.seq_index, is_mask.float()
        )
        scale = (1 - _MASK_RATIO_TRAIN) / (1 - masked / lengths)
        return (x.float() * scale[batch.seq_index][:, None]).to(x.dtype)


def build_model(
    config: Esm2Config,
    state: dict[str, torch.Tensor],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Esm2Model:
    """Build :class:`Esm2Model` from fair-esm weights (prefixes stripped, checked).

    The module is created on the meta device and takes the converted tensors as
    its parameters, so a 3B model is never initialised randomly nor held twice.

    Returns:
        The model in eval mode.
    """

    def convert(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device=device, dtype=dtype)

    ours: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if ".self_attn." in name and ".out_proj." not in name:
            continue
        ours[name.replace(".self_attn.out_proj.", ".out_proj.")] = convert(tensor)
    for index in range(config.num_layers):
        prefix = f"layers.{index}.self_attn."
        for kind in ("weight", "bias"):
            ours[f"layers.{index}.qkv_proj.{kind}"] = torch.cat(
                [convert(state[f"{prefix}{p}_proj.{kind}"]) for p in "qkv"]
            )
    with torch.device("meta"):
        model = Esm2Model(config)
    model.load_state_dict(ours, strict=True, assign=True)
    return model.eval()


class Esm2Encoder(PooledEncoder):
    """ESM-2 embeddings the VirNucPro way (see module docstring)."""

    TOKENS_PER_BATCH = DEFAULT_TOKENS_PER_BATCH

    def __init__(self, model: Esm2Model, info: ModelInfo, device: torch.device) -> None:
        self._model = model
        self._info = info
        self._device = device
        self._backend = AttentionBackend(info.attention)

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str],
        *,
        device: str = "auto",
        precision: str = "auto",
    ) -> Self:
        """Load a fair-esm ESM-2 file (or a known model name) onto a device.

        Args:
            model: A ``.pt`` path, or a name such as ``esm2_t36_3B_UR50D`` looked
                up in the torch hub cache.
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

        Raises:
            ModelLoadError: The file is missing, unsafe, damaged or not ESM-2.
            PipelineError: The device or precision cannot be used.
        """
        path = resolve_esm2_path(model)
        config, state, demo = read_esm2_file(path)
        source = WeightSource(str(path), file_identity(path), demo)
        source.warn_if_demo()
        return cls.from_state(
            config, state, device=device, precision=precision, source=source
        )

    @classmethod
    def from_state(
        cls,
        config: Esm2Config,
        state: dict[str, torch.Tensor],
        *,
        device: str = "auto",
        precision: str = "auto",
        source: WeightSource = _IN_MEMORY,
    ) -> Self:
        """Build the encoder from checked fair-esm tensors (prefixes stripped).

        Args:
            config: Dimensions.
            state: Tensors by fair-esm name, as :func:`read_esm2_file` returns.
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
            source: Where the tensors came from (recorded in :attr:`info`).

        Raises:
            PipelineError: The device or precision cannot be used.
        """
        plan = plan_device(device, precision)
        dtype = torch_dtype(plan.precision)
        target = torch.device(plan.device)
        net = build_model(config, state, device=target, dtype=dtype)
        backend = choose_backend(target, dtype, alibi=False)
        info = ModelInfo(
            kind=EncoderKind.ESM.value,
            architecture="ESM-2",
            path=source.path,
            identity=source.identity,
            num_layers=config.num_layers,
            hidden_size=config.embed_dim,
            num_heads=config.num_heads,
            embedding_dim=config.embed_dim,
            device=plan.device,
            precision=plan.precision.value,
            attention=backend.value,
            demo=source.demo,
        )
        return cls(net, info, target)

    def tokenize(
        self, ids: Sequence[str], sequences: Sequence[str]
    ) -> list[np.ndarray]:
        """Token ids of each protein (``<cls>`` and ``<eos>`` included)."""
        return [tokenize_protein(i, s) for i, s in zip(ids, sequences, strict=True)]

    def pool_span(self, num_tokens: int) -> tuple[int, int]:
        """Residues 1 .. min(residues, 1024): not ``<cls>``, not ``<eos>``."""
        return 1, 1 + min(num_tokens - 2, MAX_POOLED_RESIDUES)

    def forward_pooled(self, batch: PackedBatch) -> torch.Tensor:
        """``[B, D]`` float32 mean embeddings of a packed batch on the device."""
        dtype = self._model.embed_tokens.weight.dtype
        attention = prepare_attention(batch, self._backend, dtype=dtype)
        return pool_mean(self._model(batch, attention), batch)
