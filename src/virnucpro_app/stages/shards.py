"""Prepared frames of one shard, stored compactly in a ckptkit checkpoint.

A shard is ``shard_size`` consecutive kept frames (the original's 10,000-record
files). Its frames are stored as two byte tensors (all nucleotide, all protein
sequences concatenated) with int64 offsets, and the frame IDs as a list. Each
shard's content identity (:attr:`ShardFrames.digest`) goes into its metadata and
into the metadata of every checkpoint computed from it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from virnucpro_app.identity import content_identity


@dataclass(frozen=True)
class ShardFrames:
    """The kept frames of one shard, in frame order.

    Attributes:
        index: 0-based shard number.
        ids: Frame IDs (``{record}_chunk_{k}F1`` ...).
        nucleotides: The nucleotide sequence paired with each frame (DNABERT-S input).
        proteins: Each frame's protein (ESM-2 input).
    """

    index: int
    ids: list[str]
    nucleotides: list[str]
    proteins: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def digest(self) -> str:
        """Content identity of the frames (IDs and both sequences, in order)."""
        return content_identity(
            "\n".join(self.ids).encode(),
            "\n".join(self.nucleotides).encode(),
            "\n".join(self.proteins).encode(),
        )


def tensor_digest(tensor: torch.Tensor) -> str:
    """Content identity of a tensor's shape, dtype and values."""
    array = tensor.detach().cpu().contiguous().numpy()
    return content_identity(
        f"{array.dtype}{list(array.shape)}".encode(), array.tobytes()
    )


def _pack(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = [t.encode("ascii") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    joined = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return torch.from_numpy(joined), torch.from_numpy(offsets)


def _unpack(data: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    raw = data.numpy().tobytes()
    bounds = offsets.tolist()
    return [raw[a:b].decode("ascii") for a, b in itertools.pairwise(bounds)]


def frames_state(shard: ShardFrames) -> dict[str, object]:
    """The checkpoint state of a shard's frames."""
    nucleotide, nucleotide_offsets = _pack(shard.nucleotides)
    protein, protein_offsets = _pack(shard.proteins)
    return {
        "index": shard.index,
        "ids": list(shard.ids),
        "nucleotide": nucleotide,
        "nucleotide_offsets": nucleotide_offsets,
        "protein": protein,
        "protein_offsets": protein_offsets,
    }


def frames_from_state(state: dict[str, object]) -> ShardFrames:
    """Rebuild a shard's frames from its checkpoint state.

    Raises:
        KeyError: A field is missing.
        ValueError: Fields disagree in length.
    """
    ids = list(state["ids"])  # type: ignore[call-overload]
    nucleotides = _unpack(state["nucleotide"], state["nucleotide_offsets"])  # type: ignore[arg-type]
    proteins = _unpack(state["protein"], state["protein_offsets"])  # type: ignore[arg-type]
    if not len(ids) == len(nucleotides) == len(proteins):
        msg = "frame IDs and sequences disagree in number"
        raise ValueError(msg)
    return ShardFrames(int(state["index"]), ids, nucleotides, proteins)  # type: ignore[call-overload]
