"""One attention function for packed batches, with backends chosen at run time.

Backends (all compute the same thing: each token attends to the tokens of its own
sequence only, plus an optional ALiBi bias ``-slope_h * |i - j|``):

- ``sdpa`` (everywhere, the reference): the packed ``[T, H, D]`` tensors are
  scattered into a ``[B, H, L, D]`` view (padding under 10 % by construction of
  the batches) and sent through ``torch.nn.functional.scaled_dot_product_attention``
  with a key-padding mask, or a float mask holding ALiBi plus ``-inf`` on padding.
  When all sequences of a batch have the same length there is no padding, no
  scatter, and (without ALiBi) no mask, so CUDA may take its flash kernel.
- ``torch-varlen``: ``torch.nn.attention.varlen.varlen_attn`` (CUDA, fp16/bf16,
  no bias: ESM-2 only) straight on the packed tensors.
- ``flash-attn``: ``flash_attn_varlen_func`` from the flash-attn package when it
  is installed (CUDA, fp16/bf16; ALiBi through ``alibi_slopes``).

A varlen backend is used only after a probe on the real device agrees with
``sdpa``; any failure falls back to ``sdpa`` with a warning. The environment
variable ``VIRNUCPRO_ATTENTION`` forces a backend (for benchmarks), except
``torch-varlen`` for an ALiBi model (it has no bias term: ``sdpa``, with a
warning); an unknown name is an error.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

from virnucpro_app.errors import PipelineError

if TYPE_CHECKING:
    from virnucpro_app.models.packing import PackedBatch

#: Environment variable that forces an attention backend.
BACKEND_ENV = "VIRNUCPRO_ATTENTION"

# Largest |difference| allowed between a varlen backend and SDPA in the probe
# (half-precision rounding of O(1) outputs is about 1e-2 at worst).
_PROBE_TOLERANCE = 5e-2


class AttentionBackend(StrEnum):
    """Attention implementations."""

    SDPA = "sdpa"
    TORCH_VARLEN = "torch-varlen"
    FLASH_ATTN = "flash-attn"


@dataclass(frozen=True)
class AttentionInputs:
    """What attention needs to know about one packed batch (built once per batch).

    Attributes:
        cu_seqlens: ``[B+1]`` int32 boundaries.
        max_length: Longest sequence.
        num_sequences: ``B``.
        pad_index: ``[T]`` flat index of each token in the ``[B*L]`` view, or
            ``None`` when every sequence has length ``L``.
        mask: SDPA ``attn_mask`` (bool key mask, or float ALiBi bias with -inf
            on padding), or ``None``.
        alibi_slopes: ``[H]`` float32 slopes for flash-attn, or ``None``.
    """

    backend: AttentionBackend
    cu_seqlens: torch.Tensor
    max_length: int
    num_sequences: int
    pad_index: torch.Tensor | None
    mask: torch.Tensor | None
    alibi_slopes: torch.Tensor | None


def alibi_bias(slopes: torch.Tensor, length: int) -> torch.Tensor:
    """ALiBi bias ``[H, L, L]`` with ``bias[h, i, j] = -slope_h * |i - j|`` (float32).

    Args:
        slopes: ``[H]`` slopes.
        length: ``L``.

    Returns:
        The bias, on the slopes' device.
    """
    pos = torch.arange(length, device=slopes.device)
    distance = (pos[None, :] - pos[:, None]).abs().to(torch.float32)
    return slopes.to(torch.float32)[:, None, None] * -distance


def prepare_attention(
    batch: PackedBatch,
    backend: AttentionBackend,
    *,
    dtype: torch.dtype,
    alibi_slopes: torch.Tensor | None = None,
) -> AttentionInputs:
    """Build the per-batch attention inputs shared by every layer.

    Args:
        batch: The packed batch, on the compute device.
        backend: The backend to use.
        dtype: Compute dtype of q/k/v (the SDPA float mask must match it).
        alibi_slopes: ``[H]`` slopes for an ALiBi model, ``None`` for no bias.
    """
    length = batch.max_length
    uniform = min(batch.lengths) == length
    pad_index = None
    mask = None
    if backend is AttentionBackend.SDPA:
        num = batch.num_sequences
        valid = None
        if not uniform:
            pad_index = batch.seq_index * length + batch.positions
            valid = torch.zeros(num * length, dtype=torch.bool, device=pad_index.device)
            valid[pad_index] = True
            valid = valid.view(num, 1, 1, length)
        if alibi_slopes is not None:
            bias = alibi_bias(alibi_slopes, length)[None]
            if valid is not None:
                bias = bias.masked_fill(~valid, float("-inf"))
            mask = bias.to(dtype)
        else:
            mask = valid
    return AttentionInputs(
        backend=backend,
        cu_seqlens=batch.cu_seqlens,
        max_length=length,
        num_sequences=batch.num_sequences,
        pad_index=pad_index,
        mask=mask,
        alibi_slopes=alibi_slopes,
    )


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inputs: AttentionInputs
) -> torch.Tensor:
    """Attention of packed ``[T, H, D]`` queries, keys and values.

    Scaled by ``1/sqrt(D)``; each token sees only its own sequence.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    if inputs.backend is AttentionBackend.SDPA:
        return _sdpa(q, k, v, inputs, scale)
    # Varlen kernels want dense [T, H, D] (v is a strided view of the qkv matmul).
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    cu, length = inputs.cu_seqlens, inputs.max_length
    out: Any
    if inputs.backend is AttentionBackend.TORCH_VARLEN:
        from torch.nn.attention.varlen import varlen_attn

        out = varlen_attn(q, k, v, cu, cu, length, length, scale=scale)
    else:
        from flash_attn import flash_attn_varlen_func  # type: ignore[import-not-found]

        out = flash_attn_varlen_func(
            q,
            k,
            v,
            cu,
            cu,
            length,
            length,
            softmax_scale=scale,
            causal=False,
            alibi_slopes=inputs.alibi_slopes,
        )
    return cast("torch.Tensor", out)


def _sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    inputs: AttentionInputs,
    scale: float,
) -> torch.Tensor:
    num, length = inputs.num_sequences, inputs.max_length
    _, heads, dim = q.shape

    def padded(x: torch.Tensor) -> torch.Tensor:
        if inputs.pad_index is not None:
            flat = x.new_zeros(num * length, heads, dim)
            flat[inputs.pad_index] = x
            x = flat
        return x.view(num, length, heads, dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        padded(q), padded(k), padded(v), attn_mask=inputs.mask, scale=scale
    )
    out = out.transpose(1, 2).reshape(num * length, heads, dim)
    return out if inputs.pad_index is None else out[inputs.pad_index]


def _candidates(*, alibi: bool) -> list[AttentionBackend]:
    found = []
    if importlib.util.find_spec("flash_attn") is not None:
        found.append(AttentionBackend.FLASH_ATTN)
    if not alibi and importlib.util.find_spec("torch.nn.attention.varlen") is not None:
        found.append(AttentionBackend.TORCH_VARLEN)
    return found


def choose_backend(
    device: torch.device, dtype: torch.dtype, *, alibi: bool
) -> AttentionBackend:
    """Pick the fastest backend that works here, proven by a probe.

    Returns:
        The backend ``VIRNUCPRO_ATTENTION`` names when set (``sdpa`` instead of
        ``torch-varlen`` for an ALiBi model, with a warning); else ``sdpa`` on
        the CPU, in fp32, or when no varlen kernel passes the probe; otherwise
        the first varlen backend that does.

    Raises:
        PipelineError: ``VIRNUCPRO_ATTENTION`` names no backend.
    """
    forced = os.environ.get(BACKEND_ENV, "").strip()
    if forced:
        return _forced_backend(forced, alibi=alibi)
    if device.type != "cuda" or dtype not in (torch.float16, torch.bfloat16):
        return AttentionBackend.SDPA
    for backend in _candidates(alibi=alibi):
        problem = probe_backend(backend, device, dtype, alibi=alibi)
        if problem is None:
            return backend
        warnings.warn(
            f"attention backend {backend} unusable here ({problem}); trying the next",
            RuntimeWarning,
            stacklevel=2,
        )
    return AttentionBackend.SDPA


def _forced_backend(value: str, *, alibi: bool) -> AttentionBackend:
    """The backend ``VIRNUCPRO_ATTENTION`` names, if it can compute this model."""
    try:
        backend = AttentionBackend(value.lower())
    except ValueError:
        choices = ", ".join(b.value for b in AttentionBackend)
        raise PipelineError(
            f"{BACKEND_ENV}={value!r} is not an attention backend: use one of "
            f"{choices}, or unset it to let the model choose"
        ) from None
    if alibi and backend is AttentionBackend.TORCH_VARLEN:
        # varlen_attn takes no bias: DNABERT-S without its ALiBi term would give
        # other embeddings without any error.
        warnings.warn(
            f"{BACKEND_ENV}={value}: torch's varlen kernel has no ALiBi bias, "
            "which this model needs; using sdpa for it",
            RuntimeWarning,
            stacklevel=3,
        )
        return AttentionBackend.SDPA
    return backend


def probe_backend(
    backend: AttentionBackend,
    device: torch.device,
    dtype: torch.dtype,
    *,
    alibi: bool,
) -> str | None:
    """Run a small packed batch through ``backend`` and through SDPA and compare.

    Returns:
        ``None`` when the backend agrees with SDPA, else what went wrong.
    """
    import numpy as np

    from virnucpro_app.models.packing import pack

    generator = torch.Generator().manual_seed(0)
    lengths = (7, 19, 3)
    batch = pack(
        [np.zeros(n, dtype=np.int64) for n in lengths], [(0, n) for n in lengths]
    ).to(device)
    heads, dim = 4, 64
    # Strided views of one [T, 3, H, D] tensor, as the models produce them.
    qkv = torch.randn(sum(lengths), 3, heads, dim, generator=generator)
    q, k, v = qkv.to(device, dtype).unbind(1)
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], device=device) if alibi else None
    try:
        want = attend(
            q,
            k,
            v,
            prepare_attention(
                batch, AttentionBackend.SDPA, dtype=dtype, alibi_slopes=slopes
            ),
        )
        got = attend(
            q, k, v, prepare_attention(batch, backend, dtype=dtype, alibi_slopes=slopes)
        )
        diff = (want.float() - got.float()).abs().max().item()
    except Exception as error:  # noqa: BLE001 - any failure means "do not use it"
        first_line = (str(error).splitlines() or [""])[0]
        return f"{type(error).__name__}: {first_line}"
    if not diff <= _PROBE_TOLERANCE:
        return f"differs from SDPA by {diff:.3g}"
    return None
