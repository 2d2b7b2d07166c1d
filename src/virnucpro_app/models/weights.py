"""Reading weight files safely and checking them against an architecture.

Every failure becomes a :class:`~virnucpro_app.errors.ModelLoadError` (exit 1)
that names the file and what is wrong with it: truncated or not a weights file,
a pickle needing a global outside the allowlist, missing keys, unexpected keys,
wrong shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ckptkit.errors import CheckpointError
from ckptkit.legacy import ZIP_MAGIC, SafeGlobal, safe_torch_load
from virnucpro_app.errors import ModelLoadError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    import torch
    from torch import nn


def embedding_to_assign(count: int, dim: int) -> nn.Embedding:
    """An ``nn.Embedding`` whose weight is left unfilled, for weights assigned next.

    The encoders build their modules on ``meta`` and then assign the published
    weights (``load_state_dict(assign=True)``), so initialising is wasted work. For
    an embedding it is worse than wasted: ``normal_`` on ``meta`` runs torch's Python
    meta kernels, whose first use imports sympy, about 2 s of every process that
    loads a model (``bench/bench_model_load.py``).
    """
    import torch  # here, not at the top: the file checks run before torch loads

    return torch.nn.Embedding(count, dim, _weight=torch.empty(count, dim))


# Enough names for a person to see the pattern; the count says the rest.
_SHOW_NAMES = 8


def read_torch_file(
    path: Path, *, extra_globals: Sequence[SafeGlobal] = (), what: str
) -> Any:  # a pickle holds whatever its writer put there
    """Load a ``torch.save`` file with ``weights_only=True`` and an allowlist.

    Args:
        path: The file.
        extra_globals: Globals allowed besides torch's weights-only set.
        what: What the file should be, for the error message.

    Raises:
        ModelLoadError: Missing, truncated, not a torch file, or unsafe.
    """
    with path.open("rb") as handle:
        # Memory-map zip-format files: a multi-GB model is paged in, not copied.
        is_zip = handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    try:
        return safe_torch_load(
            path, extra_globals=extra_globals, map_location="cpu", mmap=is_zip
        )
    except CheckpointError as error:
        raise ModelLoadError(
            f"{path}: cannot load as {what}: {error.reason}"
        ) from error


def read_safetensors(path: Path, *, what: str) -> dict[str, torch.Tensor]:
    """Load every tensor of a safetensors file to the CPU.

    Args:
        path: The file.
        what: What the file should be, for the error message.

    Raises:
        ModelLoadError: The file is truncated or not safetensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelLoadError(
            f"{path}: cannot load as {what}: {str(error).splitlines()[0]} "
            "(truncated or damaged download? fetch the file again)"
        ) from error


def _names(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SHOW_NAMES])
    more = len(ordered) - _SHOW_NAMES
    return f"{shown} (+{more} more)" if more > 0 else shown


def check_state(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    *,
    path: Path,
    what: str,
    ignored_prefixes: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Require exactly the expected tensors with exactly the expected shapes.

    Args:
        state: The tensors read from the file (prefixes already stripped).
        expected: Every required name and its shape.
        path: The file or folder, for the message.
        what: What the file should be, for the message.
        ignored_prefixes: Names starting with these are allowed and unused
            (heads that embeddings do not need).

    Returns:
        The expected tensors of ``state`` (the ignored ones left out).

    Raises:
        ModelLoadError: Names every missing key, unexpected key and wrong shape.
    """
    missing = [name for name in expected if name not in state]
    unexpected = [
        name
        for name in state
        if name not in expected and not name.startswith(tuple(ignored_prefixes))
    ]
    wrong = [
        f"{name} is {list(state[name].shape)}, expected {list(shape)}"
        for name, shape in expected.items()
        if name in state and tuple(state[name].shape) != shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): {_names(unexpected)}")
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong[:_SHOW_NAMES]))
    if problems:
        raise ModelLoadError(f"{path}: does not match {what}: " + " | ".join(problems))
    for name in expected:
        if not state[name].is_floating_point():
            raise ModelLoadError(
                f"{path}: tensor {name} has dtype {state[name].dtype}, "
                "expected floating point weights"
            )
    return {name: tensor for name, tensor in state.items() if name in expected}
