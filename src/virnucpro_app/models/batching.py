"""Token-budget batching shared by both encoders (pure Python, no torch).

Sequences are sorted longest first and cut into batches whose *padded* size
(batch size x longest member) stays within ``tokens_per_batch`` and whose padding
is at most :data:`MAX_PADDING_FRACTION` of it. The models run packed (no padding
in any token-wise layer); the padded size bounds the attention step, which sees
each batch as ``[batch, longest, ...]``, and it is what decides peak memory.

Longest first, so that a batch that does not fit in memory fails at the start of
a run rather than after hours. A batch that runs out of GPU memory is split in
halves and retried (:func:`run_with_backoff`).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from virnucpro_app.errors import PipelineError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Largest share of padding tokens allowed in one batch's ``[batch, longest]`` view.
MAX_PADDING_FRACTION = 0.1


def dedupe(sequences: Sequence[str]) -> tuple[list[str], list[int]]:
    """Collapse identical sequences so that each is computed once.

    Returns:
        ``(unique, inverse)``: the distinct sequences in first-seen order and, for
        each input position, the index of its sequence in ``unique``.

    Example:
        >>> dedupe(["AC", "GT", "AC"])
        (['AC', 'GT'], [0, 1, 0])
    """
    index_of: dict[str, int] = {}
    inverse = [index_of.setdefault(seq, len(index_of)) for seq in sequences]
    return list(index_of), inverse


def padded_tokens(lengths: Sequence[int], batch: Sequence[int]) -> int:
    """Tokens of ``batch`` once padded to its longest member.

    Args:
        lengths: Token count of every sequence.
        batch: Indices into ``lengths``.

    Returns:
        ``len(batch) * max(length)``, 0 for an empty batch.
    """
    return len(batch) * max((lengths[i] for i in batch), default=0)


def plan_batches(
    lengths: Sequence[int],
    tokens_per_batch: int,
    *,
    order: Sequence[int] | None = None,
) -> list[list[int]]:
    """Group sequences into batches under a token budget.

    A sequence longer than the budget gets a batch of its own (it must run
    somewhere); every other batch satisfies ``padded_tokens <= tokens_per_batch``
    and ``padding <= MAX_PADDING_FRACTION * padded_tokens``.

    Args:
        lengths: Token count of every sequence (special tokens included).
        tokens_per_batch: The budget of padded tokens per batch.
        order: Only these indices, in this order (default: all, sorted by
            length, longest first; ties keep input order).

    Returns:
        Batches of indices into ``lengths``; each index appears exactly once.

    Raises:
        ValueError: ``tokens_per_batch`` is not positive.

    Example:
        >>> plan_batches([5, 10, 9, 1], 20)
        [[1, 2], [0], [3]]
    """
    if tokens_per_batch < 1:
        msg = f"tokens_per_batch must be positive, got {tokens_per_batch}"
        raise ValueError(msg)
    if order is None:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    total = 0
    for index in order:
        length = lengths[index]
        new_longest = max(longest, length)
        new_padded = (len(current) + 1) * new_longest
        new_total = total + length
        fits = new_padded <= tokens_per_batch
        tight = new_padded - new_total <= MAX_PADDING_FRACTION * new_padded
        if current and not (fits and tight):
            batches.append(current)
            current, longest, total = [], 0, 0
            new_longest, new_total = length, length
        current.append(index)
        longest, total = new_longest, new_total
    if current:
        batches.append(current)
    return batches


def run_with_backoff(
    lengths: Sequence[int],
    tokens_per_batch: int,
    run: Callable[[list[int]], None],
    *,
    is_out_of_memory: Callable[[BaseException], bool],
    on_backoff: Callable[[int, int], None] | None = None,
) -> int:
    """Plan and run every batch, halving the budget and retrying on out-of-memory.

    The batches are :func:`plan_batches` under ``tokens_per_batch``. A batch
    that fails with an out-of-memory error is put back, the budget is halved
    (relative to that batch's own size, so it always shrinks) and the batch is
    re-planned under the new budget; later batches are re-planned under it as
    they come. The smaller budget stays for the rest of the run.

    Args:
        lengths: Token count of every sequence.
        tokens_per_batch: The starting budget.
        run: Computes one batch; raises on failure.
        is_out_of_memory: Tells an out-of-memory error from any other error
            (others propagate unchanged).
        on_backoff: Called with ``(old_budget, new_budget)`` before a retry.

    Returns:
        The budget in force at the end.

    Raises:
        PipelineError: A single sequence does not fit in memory on its own.
    """
    budget = tokens_per_batch
    queue = deque(plan_batches(lengths, budget))
    while queue:
        batch = queue.popleft()
        if len(batch) > 1 and padded_tokens(lengths, batch) > budget:
            queue.extendleft(reversed(plan_batches(lengths, budget, order=batch)))
            continue
        try:
            run(batch)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if len(batch) == 1:
                raise PipelineError(
                    f"out of memory on a single sequence of {lengths[batch[0]]} "
                    "tokens; use a device with more memory or --precision bf16/fp16"
                ) from error
            old = budget
            budget = max(1, min(budget, padded_tokens(lengths, batch)) // 2)
            if on_backoff is not None:
                on_backoff(old, budget)
            queue.appendleft(batch)
    return budget
