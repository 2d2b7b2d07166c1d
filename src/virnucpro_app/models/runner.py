"""The embedding loop shared by both encoders.

Order of work for one call of :func:`embed_sequences`:

1. identical sequences are collapsed (each distinct sequence is computed once);
2. distinct sequences are sorted longest first and cut into windows of
   :data:`WINDOW_SEQUENCES`; a background thread tokenizes window ``w+1`` while
   the device works on window ``w``;
3. each window is planned into token-budget batches (``batching.plan_batches``);
   batches are packed on the host (pinned memory on CUDA), copied asynchronously
   and run; the result of batch ``i-1`` is copied back while batch ``i`` runs, so
   the GPU is never idle waiting for the host;
4. an out-of-memory error halves the budget and retries the batch
   (``batching.run_with_backoff``);
5. rows are put back in input order, float32, on the CPU.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch

from virnucpro_app.errors import InputError
from virnucpro_app.models.batching import dedupe, run_with_backoff
from virnucpro_app.models.packing import PackedBatch, pack

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from virnucpro_app.models import ModelInfo, ProgressCallback

#: Distinct sequences tokenized per window (bounds host memory for tokens and the
#: length-sorting scope; large enough for tight batches).
WINDOW_SEQUENCES = 4096


class Backbone(Protocol):
    """What an encoder supplies to the shared loop."""

    @property
    def embedding_dim(self) -> int:
        """Width of one embedding."""
        ...

    def tokenize(
        self, ids: Sequence[str], sequences: Sequence[str]
    ) -> list[np.ndarray]:
        """Token ids of each sequence, special tokens included."""
        ...

    def pool_span(self, num_tokens: int) -> tuple[int, int]:
        """``[start, stop)`` of the tokens a sequence's mean covers."""
        ...

    def forward_pooled(self, batch: PackedBatch) -> torch.Tensor:
        """``[B, D]`` float32 mean embeddings of a packed batch on the device."""
        ...


def is_out_of_memory(error: BaseException) -> bool:
    """Tell whether ``error`` is a CUDA out-of-memory error."""
    return isinstance(error, torch.cuda.OutOfMemoryError)


@dataclass
class _Pending:
    rows: list[int]
    result: torch.Tensor
    num_sequences: int
    num_tokens: int


@dataclass
class _Collector:
    """Receives batch results one step late: the next batch is queued first."""

    out: torch.Tensor
    progress: ProgressCallback | None
    pending: list[_Pending] = field(default_factory=list)

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        if len(self.pending) > 1:
            self._drain(keep=1)

    def flush(self) -> None:
        self._drain(keep=0)

    def _drain(self, *, keep: int) -> None:
        while len(self.pending) > keep:
            item = self.pending.pop(0)
            # On CUDA, .cpu() is queued behind the next batch and so waits for it
            # too: the device stays busy until then, then idles while the host
            # packs the batch after (the tokenizer thread has its tokens ready).
            self.out[item.rows] = item.result.cpu()
            if self.progress is not None:
                self.progress(item.num_sequences, item.num_tokens)


def _check_inputs(ids: Sequence[str], sequences: Sequence[str]) -> None:
    if len(ids) != len(sequences):
        msg = f"{len(ids)} ids but {len(sequences)} sequences"
        raise ValueError(msg)
    for seq_id, seq in zip(ids, sequences, strict=True):
        if not seq:
            raise InputError(f"record {seq_id!r}: empty sequence, nothing to embed")


@dataclass(frozen=True)
class Batching:
    """Where the loop runs its batches and how many padded tokens one may hold.

    Attributes:
        device: Where the backbone's weights are.
        tokens_per_batch: Budget of padded tokens per batch (the start: it
            halves after an out-of-memory error).
    """

    device: torch.device
    tokens_per_batch: int


def embed_sequences(
    backbone: Backbone,
    ids: Sequence[str],
    sequences: Sequence[str],
    batching: Batching,
    *,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    """Embed sequences with ``backbone``: ``[N, D]`` float32 rows in input order.

    Args:
        backbone: The model side (tokenizer, pooling rule, packed forward).
        ids: Record IDs (used in error messages only).
        sequences: The sequences.
        batching: The device and the token budget per batch.
        progress: Called with ``(sequences, tokens)`` as batches finish.

    Returns:
        ``[N, D]`` float32 embeddings on the CPU.

    Raises:
        InputError: An empty sequence, or one the tokenizer refuses.
        PipelineError: One sequence alone does not fit in device memory.
    """
    _check_inputs(ids, sequences)
    unique, inverse = dedupe(sequences)
    first_id = [""] * len(unique)
    multiplicity = [0] * len(unique)
    for seq_id, row in zip(ids, inverse, strict=True):
        if not multiplicity[row]:
            first_id[row] = seq_id
        multiplicity[row] += 1
    order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
    windows = [
        order[start : start + WINDOW_SEQUENCES]
        for start in range(0, len(order), WINDOW_SEQUENCES)
    ]
    job = _Job(
        backbone=backbone,
        device=batching.device,
        budget=batching.tokens_per_batch,
        collector=_Collector(
            out=torch.empty(len(unique), backbone.embedding_dim, dtype=torch.float32),
            progress=progress,
        ),
    )

    def tokenize(window: list[int]) -> list[np.ndarray]:
        return backbone.tokenize(
            [first_id[i] for i in window], [unique[i] for i in window]
        )

    # One worker: tokenizing window w+1 overlaps the device working on window w.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
        upcoming = [pool.submit(tokenize, w) for w in windows[:1]]
        for number, window in enumerate(windows):
            tokens = upcoming.pop().result()
            upcoming.extend(pool.submit(tokenize, w) for w in windows[number + 1 :][:1])
            job.run_window(window, tokens, [multiplicity[i] for i in window])
    job.collector.flush()
    return job.collector.out[torch.as_tensor(inverse, dtype=torch.long)]


@dataclass
class _Job:
    """One call's device, budget (shrinks after an out-of-memory) and results."""

    backbone: Backbone
    device: torch.device
    budget: int
    collector: _Collector

    def run_window(
        self, window: list[int], tokens: list[np.ndarray], counts: list[int]
    ) -> None:
        lengths = [len(t) for t in tokens]
        pin = self.device.type == "cuda"

        def run(batch: list[int]) -> None:
            packed = pack(
                [tokens[i] for i in batch],
                [self.backbone.pool_span(lengths[i]) for i in batch],
            )
            if pin:
                packed = packed.pin_memory()
            with torch.inference_mode():
                result = self.backbone.forward_pooled(
                    packed.to(self.device, non_blocking=pin)
                )
            self.collector.add(
                _Pending(
                    rows=[window[i] for i in batch],
                    result=result,
                    num_sequences=sum(counts[i] for i in batch),
                    num_tokens=packed.num_tokens,
                )
            )

        self.budget = run_with_backoff(
            lengths,
            self.budget,
            run,
            is_out_of_memory=is_out_of_memory,
            on_backoff=self._on_backoff,
        )

    def _on_backoff(self, old: int, new: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        warnings.warn(
            f"out of GPU memory with --tokens-per-batch {old}; retrying with {new}",
            RuntimeWarning,
            stacklevel=3,
        )


class PooledEncoder(Backbone):
    """What both encoders share: their info, batch budget and :func:`embed_sequences`.

    A subclass sets ``_info`` and ``_device``, names its per-device budgets in
    ``TOKENS_PER_BATCH`` and supplies the :class:`Backbone` methods.
    """

    TOKENS_PER_BATCH: ClassVar[dict[str, int]]
    _info: ModelInfo
    _device: torch.device

    @property
    def info(self) -> ModelInfo:
        """Where the weights came from and how they run."""
        return self._info

    @property
    def embedding_dim(self) -> int:
        """Width of one embedding (the model width)."""
        return self._info.embedding_dim

    @property
    def default_tokens_per_batch(self) -> int:
        """Batch budget used when the caller gives none."""
        return self.TOKENS_PER_BATCH[self._device.type]

    def embed(
        self,
        ids: Sequence[str],
        sequences: Sequence[str],
        *,
        tokens_per_batch: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """Embed sequences: ``[N, D]`` float32 rows, in input order, on the CPU.

        Args:
            ids: Record IDs (for error messages).
            sequences: Nucleotide sequences (DNABERT-S) or proteins (ESM-2).
            tokens_per_batch: Padded tokens per batch (default per device).
            progress: Called with ``(sequences, tokens)`` as batches finish.

        Raises:
            InputError: An empty sequence, or (ESM-2) a letter outside its alphabet.
            PipelineError: One sequence alone does not fit in device memory.
        """
        budget = tokens_per_batch or self.default_tokens_per_batch
        return embed_sequences(
            self, ids, sequences, Batching(self._device, budget), progress=progress
        )
