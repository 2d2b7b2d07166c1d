"""The run manifest: exactly what makes a run's results reusable.

It records a content hash of every input file, the identity (content hash) of
each model, the chunk size, the compute precision, the shard size (shards are the
unit of work: other boundaries would mean other checkpoints) and the app's
algorithm version. Batch size, device and worker counts are deliberately absent:
they do not change results. ``--resume`` with a different manifest is refused,
naming what changed; nothing stale is ever reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ckptkit
from virnucpro_app.errors import PipelineError
from virnucpro_app.identity import file_identity
from virnucpro_app.layout import MANIFEST_SCHEMA

if TYPE_CHECKING:
    from pathlib import Path

    from virnucpro_app.config import ModelPaths, RunConfig
    from virnucpro_app.stages.store import RunCheckpoints

#: Bumped whenever a change of ours changes any number the pipeline produces.
ALGORITHM_VERSION = "1"
#: Stands in the manifest's classifier field: feature runs use no classifier.
NO_CLASSIFIER = "none (training features)"


@dataclass(frozen=True)
class ModelIdentities:
    """Content identities of a job's models, hashed once per job.

    Attributes:
        dnabert: Identity of the DNABERT-S folder.
        esm: Identity of the ESM-2 file.
        classifier: Identity of the classifier file, or :data:`NO_CLASSIFIER`.
    """

    dnabert: str
    esm: str
    classifier: str = NO_CLASSIFIER

    @classmethod
    def of(cls, models: ModelPaths) -> ModelIdentities:
        """Hash the models (no classifier when ``models.classifier`` is empty).

        Raises:
            ModelLoadError: A model is missing or not of its kind.
        """
        from virnucpro_app.models.dnabert_files import dnabert_identity
        from virnucpro_app.models.esm2_files import esm_identity

        return cls(
            dnabert=dnabert_identity(models.dnabert),
            esm=esm_identity(models.esm),
            classifier=(
                file_identity(models.classifier) if models.classifier else NO_CLASSIFIER
            ),
        )


@dataclass(frozen=True)
class RunManifest:
    """The identity of a run's results.

    Attributes:
        inputs: ``[[file name, content hash], ...]`` in command-line order.
        dnabert: Identity of the DNABERT-S folder.
        esm: Identity of the ESM-2 file.
        classifier: Identity of the classifier file.
        chunk_size: Chunk size in bp (the model type, 300 or 500).
        precision: Compute precision of the language models.
        shard_size: Frames per shard.
        algorithm_version: Version of the app's numerics.
    """

    inputs: tuple[tuple[str, str], ...]
    dnabert: str
    esm: str
    classifier: str
    chunk_size: int
    precision: str
    shard_size: int
    algorithm_version: str = ALGORITHM_VERSION

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored in the checkpoint's metadata."""
        data = asdict(self)
        data["inputs"] = [list(pair) for pair in self.inputs]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunManifest:
        """Read a stored manifest."""
        return cls(
            inputs=tuple((str(n), str(h)) for n, h in data["inputs"]),
            dnabert=str(data["dnabert"]),
            esm=str(data["esm"]),
            classifier=str(data["classifier"]),
            chunk_size=int(data["chunk_size"]),
            precision=str(data["precision"]),
            shard_size=int(data["shard_size"]),
            algorithm_version=str(data["algorithm_version"]),
        )

    def differences(self, other: RunManifest) -> list[str]:
        """Human descriptions of every field that differs from ``other``."""
        changes = []
        mine, theirs = self.to_json(), other.to_json()
        for key, value in mine.items():
            if theirs[key] != value:
                changes.append(
                    f"{key} changed ({_short(theirs[key])} -> {_short(value)})"
                )
        return changes


def build_manifest(config: RunConfig, models: ModelIdentities) -> RunManifest:
    """Hash ``config``'s inputs into its manifest, with its models' identities."""
    return RunManifest(
        inputs=tuple((path.name, file_identity(path)) for path in config.inputs),
        dnabert=models.dnabert,
        esm=models.esm,
        classifier=models.classifier,
        chunk_size=config.model_type,
        precision=config.options.precision,
        shard_size=config.options.shard_size,
    )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004


def write_manifest(path: Path, manifest: RunManifest) -> None:
    """Store the manifest as a (tensor-free) ckptkit checkpoint."""
    ckptkit.save(path, {}, schema=MANIFEST_SCHEMA, metadata=manifest.to_json())


def read_manifest(path: Path) -> RunManifest:
    """Read a stored manifest.

    Raises:
        ckptkit.CheckpointError: The file is missing or damaged.
    """
    info = ckptkit.load(path, verify="full").info
    if info.schema != MANIFEST_SCHEMA:
        raise ckptkit.SchemaMismatchError(path, "not a virnucpro run manifest")
    try:
        return RunManifest.from_json(info.metadata)
    except (KeyError, TypeError, ValueError) as error:
        raise ckptkit.CheckpointCorruptError(
            path, f"manifest is malformed: {error}"
        ) from error


def check_resumable(stored: RunManifest, current: RunManifest, path: Path) -> None:
    """Refuse to resume a run whose inputs, models or settings changed.

    Raises:
        PipelineError: Naming every change and the way out (exit 1).
    """
    changes = current.differences(stored)
    if changes:
        raise PipelineError(
            f"cannot resume the run in {path.parent.parent}: "
            + "; ".join(changes)
            + ". Its results would be stale: use --force to start over, or "
            "restore the original inputs and settings"
        )


def settle_manifest(manifest: RunManifest, store: RunCheckpoints) -> None:
    """Store the run folder's manifest, or check that the stored one is the same.

    Raises:
        PipelineError: The stored manifest differs (inputs, models, settings).
        CheckpointProblemError: It is damaged and ``--force-resume`` is off
            (with it, every checkpoint of the folder is set aside).
    """
    path = store.layout.manifest_path
    if path.exists():
        try:
            stored = read_manifest(path)
        except ckptkit.CheckpointError as error:
            # Without a sound manifest nothing else here can be trusted either.
            store.quarantine_all(path, error.reason)
        else:
            check_resumable(stored, manifest, path)
            return
    write_manifest(path, manifest)
