"""The two language-model encoders behind one seam.

An :class:`Encoder` is loaded once (weights moved to the device once) and then
turns ``(ids, sequences)`` into one float32 embedding per sequence, in input
order. Implementations: ``dnabert`` (DNABERT-S, :mod:`.dnabert`) and ``esm``
(ESM-2, :mod:`.esm2`). This module imports no torch, so the CLI can name the
kinds without loading anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import os

    import torch

#: Called as batches finish with ``(sequences_done, tokens_done)`` increments.
ProgressCallback = Callable[[int, int], None]


class DemoModelWarning(UserWarning):
    """A demo model (random weights) was loaded: its outputs are not biology."""


class EncoderKind(StrEnum):
    """The two encoders of VirNucPro."""

    DNABERT = "dnabert"
    ESM = "esm"


@dataclass(frozen=True)
class ModelInfo:
    """What an encoder was loaded from and how it runs (goes into metadata).

    Attributes:
        kind: ``dnabert`` or ``esm``.
        architecture: Human name of the architecture.
        path: The weights file or folder.
        identity: Content hash (``virnucpro_app.identity``).
        embedding_dim: Width of one stored embedding.
        precision: Compute precision (embeddings are stored as float32).
        demo: True for the random-weight demo models.
    """

    kind: str
    architecture: str
    path: str
    identity: str
    num_layers: int
    hidden_size: int
    num_heads: int
    embedding_dim: int
    device: str
    precision: str
    attention: str
    demo: bool

    def to_metadata(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return asdict(self)


@dataclass(frozen=True)
class WeightSource:
    """Where an encoder's weights came from (what its :class:`ModelInfo` records).

    Attributes:
        path: The weights file or folder.
        identity: Content hash (``virnucpro_app.identity``).
        demo: True for the random-weight demo models.
    """

    path: str = "<in memory>"
    identity: str = "unknown"
    demo: bool = False

    def warn_if_demo(self) -> None:
        """Warn the caller of the loader that a demo model's output is no biology."""
        if self.demo:
            warnings.warn(
                f"{self.path} is a DEMO model with random weights: its embeddings "
                "are NOT BIOLOGY",
                DemoModelWarning,
                stacklevel=3,
            )


class Encoder(Protocol):
    """A loaded embedding model (:func:`load_encoder` loads one)."""

    @property
    def info(self) -> ModelInfo:
        """Where the weights came from and how they run."""
        ...

    @property
    def default_tokens_per_batch(self) -> int:
        """Batch budget used when the caller gives none."""
        ...

    def embed(
        self,
        ids: Sequence[str],
        sequences: Sequence[str],
        *,
        tokens_per_batch: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """Embed sequences: ``[N, D]`` float32 rows, in input order, on the CPU."""
        ...


def load_encoder(
    kind: EncoderKind | str,
    model: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: str = "auto",
) -> Encoder:
    """Load the encoder of ``kind`` from ``model``.

    Args:
        kind: ``dnabert`` (a DNABERT-S folder) or ``esm`` (a fair-esm ESM-2 ``.pt``
            file or a known model name such as ``esm2_t36_3B_UR50D``).
        model: Path or name.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

    Raises:
        ModelLoadError: The model cannot be loaded (the message says why).
        PipelineError: The device or precision cannot be used.
    """
    if EncoderKind(kind) is EncoderKind.DNABERT:
        from virnucpro_app.models.dnabert import DnabertEncoder

        return DnabertEncoder.load(model, device=device, precision=precision)
    from virnucpro_app.models.esm2 import Esm2Encoder

    return Esm2Encoder.load(model, device=device, precision=precision)


__all__ = [
    "DemoModelWarning",
    "Encoder",
    "EncoderKind",
    "ModelInfo",
    "ProgressCallback",
    "WeightSource",
    "load_encoder",
]
