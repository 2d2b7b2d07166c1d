"""The VirNucPro MLP classifier, its checkpoint format and its legacy import.

Architecture (as the original ``train.py``): Linear(D -> 512) -> BatchNorm1d ->
ReLU -> Dropout(0.5) -> Linear(512 -> 2), evaluated in eval mode. D is the
DNABERT-S width plus the ESM-2 width (768 + 2560 = 3328 for the published
models). Class 0 is "others", class 1 is "virus".

Current files are ckptkit checkpoints (schema ``virnucpro.classifier``, version
"1.0") whose state is ``{"state_dict": ...}`` and whose metadata names the
dimensions and the chunk size the classifier was trained for. The published
``300_model.pth`` / ``500_model.pth`` are whole pickled modules saved from a script
run as ``__main__``; :func:`import_legacy_classifier` reads them with
``weights_only=True`` and an allowlist of exactly the four classes such a file
holds, mapped onto :class:`MLPClassifier`, then upgrades them through
:data:`CLASSIFIER_MIGRATIONS` (``0.x`` -> ``1.0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

import ckptkit
from ckptkit.legacy import is_torch_pickle
from virnucpro_app.errors import ModelLoadError

if TYPE_CHECKING:
    import os

CLASSIFIER_SCHEMA = "virnucpro.classifier"
CLASSIFIER_VERSION = "1.0"
HIDDEN_DIM = 512
NUM_CLASSES = 2
LABELS = ("others", "virus")


class MLPClassifier(nn.Module):
    """VirNucPro's MLP; attribute names match the original so its weights load.

    Args:
        input_dim: Width of one merged embedding (DNABERT-S + ESM-2).
        hidden_dim: Hidden width (512 in the original).
        num_class: Output classes (2).
    """

    def __init__(
        self, input_dim: int, hidden_dim: int = HIDDEN_DIM, num_class: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, num_class)
        self.dropout = nn.Dropout(0.5)
        nn.init.xavier_uniform_(self.hidden_layer.weight)
        nn.init.xavier_uniform_(self.output_layer.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` for merged embeddings ``[N, input_dim]``."""
        hidden = F.relu(self.bn1(self.hidden_layer(features)))
        return self.output_layer(self.dropout(hidden))  # type: ignore[no-any-return]


def _from_legacy(state: Any) -> dict[str, Any]:
    """0.x -> 1.0: a whole pickled module (or a bare state dict) -> ``{"state_dict"}``.

    The published files pickle the module object itself; 1.0 stores only its
    tensors so that reading never needs a class from a pickle again.
    """
    if isinstance(state, nn.Module):
        return {"state_dict": dict(state.state_dict())}
    if isinstance(state, dict) and "hidden_layer.weight" in state:
        return {"state_dict": dict(state)}
    if isinstance(state, dict) and "state_dict" in state:
        return {"state_dict": dict(state["state_dict"])}
    msg = f"not a VirNucPro classifier (got {type(state).__name__})"
    raise ValueError(msg)


CLASSIFIER_MIGRATIONS = ckptkit.MigrationRegistry(
    schema=CLASSIFIER_SCHEMA, current=CLASSIFIER_VERSION
)
CLASSIFIER_MIGRATIONS.register("0.x", "1.0", _from_legacy)

#: Exactly the globals a published classifier pickle holds (found with
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a file saved the
#: way the original ``train.py`` saves it); ``__main__.MLPClassifier`` is mapped
#: onto our class.
LEGACY_ALLOWLIST: tuple[Any, ...] = (
    (MLPClassifier, "__main__.MLPClassifier"),
    nn.Linear,
    nn.BatchNorm1d,
    nn.Dropout,
)


@dataclass(frozen=True)
class Classifier:
    """A loaded classifier ready for inference.

    Attributes:
        model: The MLP in eval mode.
        chunk_size: Chunk size (300 or 500) it was trained for, or None if unknown.
        input_dim: Width of the merged embeddings it expects.
        identity: The file's content identity.
    """

    model: MLPClassifier
    chunk_size: int | None
    input_dim: int
    identity: str
    metadata: dict[str, Any]

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``[N, 2]`` (score1 = others, score2 = virus)."""
        with torch.no_grad():
            logits = self.model(features.to(torch.float32))
        return torch.softmax(logits, dim=1)


def _dims(state_dict: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    weight = state_dict["hidden_layer.weight"]
    out = state_dict["output_layer.weight"]
    return int(weight.shape[1]), int(weight.shape[0]), int(out.shape[0])


def build_model(state_dict: dict[str, torch.Tensor]) -> MLPClassifier:
    """An eval-mode MLP holding ``state_dict`` (shapes decide the dimensions).

    Raises:
        KeyError: A tensor is missing.
        RuntimeError: Shapes do not fit.
    """
    input_dim, hidden_dim, num_class = _dims(state_dict)
    model = MLPClassifier(input_dim, hidden_dim, num_class)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def save_classifier(
    path: str | os.PathLike[str],
    model: MLPClassifier,
    *,
    chunk_size: int,
    metadata: dict[str, Any] | None = None,
    history: tuple[ckptkit.MigrationRecord, ...] = (),
) -> ckptkit.CheckpointInfo:
    """Write a classifier checkpoint (schema ``virnucpro.classifier``, "1.0").

    Args:
        path: Target file.
        model: The MLP.
        chunk_size: The chunk size it was trained for (300 or 500).
        metadata: Extra JSON metadata (training summary, demo marker, ...).
        history: Migration records, when the model came from a legacy file.
    """
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    input_dim, hidden_dim, num_class = _dims(state_dict)
    full_metadata = {
        "input_dim": input_dim,
        "hidden_dim": hidden_dim,
        "num_classes": num_class,
        "chunk_size": chunk_size,
        "labels": list(LABELS),
        **(metadata or {}),
    }
    return ckptkit.save(
        path,
        {"state_dict": state_dict},
        version=CLASSIFIER_VERSION,
        schema=CLASSIFIER_SCHEMA,
        status="complete",
        metadata=full_metadata,
        history=history,
    )


@dataclass(frozen=True)
class ClassifierFacts:
    """What a classifier checkpoint's header says (no tensor read).

    Attributes:
        input_dim: Width of the merged embeddings it expects.
        chunk_size: The chunk size it was trained for (None if not recorded).
    """

    input_dim: int
    chunk_size: int | None


def classifier_facts(path: str | os.PathLike[str]) -> ClassifierFacts:
    """Read a classifier checkpoint's width and chunk size from its header.

    Raises:
        ModelLoadError: The file does not exist or is not a classifier
            checkpoint (a published ``.pth`` needs ``models import-classifier``).
    """
    target = Path(path)
    if not target.exists():
        raise ModelLoadError(f"{target} does not exist")
    try:
        info = ckptkit.inspect(target)
    except ckptkit.CheckpointError as error:
        raise ModelLoadError(
            f"{target}: not a classifier checkpoint ({error.reason})"
        ) from error
    _check_kind(target, info)
    width = info.metadata.get("input_dim")
    if width is None:
        shapes = {tensor.name: tensor.shape for tensor in info.tensors}
        weight = shapes.get("state_dict.hidden_layer.weight")
        if weight is None:
            raise ModelLoadError(f"{target}: holds no classifier weights")
        width = weight[1]
    chunk_size = info.metadata.get("chunk_size")
    return ClassifierFacts(int(width), None if chunk_size is None else int(chunk_size))


def _check_kind(target: Path, info: ckptkit.CheckpointInfo) -> None:
    if info.legacy:
        raise ModelLoadError(
            f"{target}: a legacy classifier file; convert it once with "
            f"`virnucpro-app models import-classifier {target} --chunk-size 300|500 "
            "--output NEW.ckpt` and pass NEW.ckpt"
        )
    if info.schema != CLASSIFIER_SCHEMA:
        raise ModelLoadError(
            f"{target}: schema {info.schema!r} is not a classifier "
            f"({CLASSIFIER_SCHEMA!r} expected)"
        )


def load_classifier(path: str | os.PathLike[str]) -> Classifier:
    """Load a classifier checkpoint for inference.

    Raises:
        ModelLoadError: The file is not a classifier (wrong schema or tensors),
            with the fix (``models import-classifier`` for published ``.pth`` files).
        ckptkit.CheckpointError: A missing or damaged file.
    """
    from virnucpro_app.identity import file_identity

    target = Path(path)
    _check_kind(target, ckptkit.inspect(target))
    checkpoint = ckptkit.load(target, verify="full", registry=CLASSIFIER_MIGRATIONS)
    try:
        model = build_model(checkpoint.state["state_dict"])
    except (KeyError, RuntimeError, TypeError) as error:
        raise ModelLoadError(
            f"{target}: classifier tensors do not fit: {error}"
        ) from error
    chunk_size = checkpoint.info.metadata.get("chunk_size")
    return Classifier(
        model=model,
        chunk_size=int(chunk_size) if chunk_size is not None else None,
        input_dim=_dims(checkpoint.state["state_dict"])[0],
        identity=file_identity(target),
        metadata=checkpoint.info.metadata,
    )


#: ``300_model.pth``, ``500_model.pth``: the published names say the chunk size.
_SIZE_IN_NAME = re.compile(r"^(300|500)_model\b")


def chunk_size_in_name(path: str | os.PathLike[str]) -> int | None:
    """The chunk size a published classifier's file name says, if it says one.

    Example:
        >>> chunk_size_in_name("models/500_model.pth"), chunk_size_in_name("x.pth")
        (500, None)
    """
    match = _SIZE_IN_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def _check_is_torch_file(source: Path) -> None:
    """Refuse, in plain words, a file that is not a ``torch.save`` pickle."""
    if not source.exists():
        raise ModelLoadError(f"{source} does not exist")
    if source.is_dir():
        raise ModelLoadError(f"{source}: a folder, not a PyTorch file")
    with source.open("rb") as handle:
        head = handle.read(8)
    if is_torch_pickle(head):
        return
    try:
        info = ckptkit.inspect(source)
    except ckptkit.CheckpointError:
        info = None
    if info is not None and info.schema == CLASSIFIER_SCHEMA:
        raise ModelLoadError(
            f"{source}: already a classifier checkpoint; pass it to --classifier"
        )
    raise ModelLoadError(
        f"{source}: not a PyTorch file (torch.save writes a zip archive or a "
        "pickle; this is neither): pass the published 300_model.pth or "
        "500_model.pth"
    )


def import_legacy_classifier(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_size: int,
) -> ckptkit.CheckpointInfo:
    """Convert a published ``300_model.pth`` / ``500_model.pth`` into a 1.0 file.

    The pickle is read with ``weights_only=True`` and :data:`LEGACY_ALLOWLIST`;
    one that needs anything else is refused without being run
    (``ckptkit.UnsafeCheckpointError``). The conversion runs through
    :data:`CLASSIFIER_MIGRATIONS` and is recorded in the new file's history.

    Raises:
        ckptkit.CheckpointError: A damaged or unsafe source file.
        ModelLoadError: Missing, not a PyTorch file, or not a VirNucPro classifier.
    """
    _check_is_torch_file(Path(source))
    checkpoint = ckptkit.load(source, extra_safe_globals=LEGACY_ALLOWLIST)
    try:
        state, applied = CLASSIFIER_MIGRATIONS.migrate(checkpoint.state, "0.x")
        model = build_model(state["state_dict"])
    except (ckptkit.MigrationError, KeyError, RuntimeError) as error:
        raise ModelLoadError(
            f"{source}: not a VirNucPro classifier: {error}"
        ) from error
    return save_classifier(
        output,
        model,
        chunk_size=chunk_size,
        metadata={"imported_from": str(Path(source).name)},
        history=tuple(applied),
    )
