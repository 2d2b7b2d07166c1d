"""The run manifest: exactly what makes a run's results reusable.

It records a content hash of every input file, the identity (content hash) of
each model, the chunk size, the compute precision, the shard size (shards are the
unit of work: other boundaries would mean other checkpoints) and the app's
algorithm version. Batch size, device and worker counts are deliberately absent:
they do not change results. ``--resume`` with a different manifest is refused,
naming what changed; nothing stale is ever reused.
"""

from __future__ import annotations

import logging
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

LOG = logging.getLogger("virnucpro_app")
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
        adopted: ``[[file, content hash], ...]`` of the legacy feature files
            ``--adopt`` takes features from (relative to its folder, sorted).
        input_sizes: Size in bytes of each input (shown when a resume is
            refused; not compared: the content hash decides).
    """

    inputs: tuple[tuple[str, str], ...]
    dnabert: str
    esm: str
    classifier: str
    chunk_size: int
    precision: str
    shard_size: int
    algorithm_version: str = ALGORITHM_VERSION
    adopted: tuple[tuple[str, str], ...] = ()
    input_sizes: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored in the checkpoint's metadata."""
        data = asdict(self)
        data["inputs"] = [list(pair) for pair in self.inputs]
        data["adopted"] = [list(pair) for pair in self.adopted]
        data["input_sizes"] = list(self.input_sizes)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunManifest:
        """Read a stored manifest (files of earlier versions lack the last two)."""
        return cls(
            inputs=tuple((str(n), str(h)) for n, h in data["inputs"]),
            dnabert=str(data["dnabert"]),
            esm=str(data["esm"]),
            classifier=str(data["classifier"]),
            chunk_size=int(data["chunk_size"]),
            precision=str(data["precision"]),
            shard_size=int(data["shard_size"]),
            algorithm_version=str(data["algorithm_version"]),
            adopted=tuple((str(n), str(h)) for n, h in data.get("adopted", [])),
            input_sizes=tuple(int(size) for size in data.get("input_sizes", [])),
        )

    def differences(self, other: RunManifest) -> list[str]:
        """What changed from ``other`` (the stored run) to this one, readably.

        Example:
            >>> models = ("dnabert-id", "esm-id", "classifier-id")
            >>> old = RunManifest((("a.fa", "xxh3_128:1"),), *models, 300, "fp32", 7)
            >>> new = RunManifest((("a.fa", "xxh3_128:2"),), *models, 500, "fp32", 7)
            >>> for change in new.differences(old):
            ...     print(change)
            input a.fa changed (content xxh3_128:1 -> xxh3_128:2)
            chunk size (--model-type) 300 -> 500
        """
        changes = _file_changes("input", other, self)
        for key, label in _MODEL_LABELS.items():
            before, after = getattr(other, key), getattr(self, key)
            if before != after:
                changes.append(f"{label} changed ({_short(before)} -> {_short(after)})")
        for key, label in _SETTING_LABELS.items():
            before, after = getattr(other, key), getattr(self, key)
            if before != after:
                changes.append(f"{label} {before} -> {after}")
        if other.adopted != self.adopted:
            changes.append(
                f"--adopt files {_count_files(other.adopted)} -> "
                f"{_count_files(self.adopted)}"
                + ("" if self.adopted else " (pass the same --adopt again)")
            )
        return changes


_MODEL_LABELS = {
    "dnabert": "DNABERT-S model",
    "esm": "ESM-2 model",
    "classifier": "classifier",
}
_SETTING_LABELS = {
    "chunk_size": "chunk size (--model-type)",
    "precision": "precision",
    "shard_size": "shard size",
    "algorithm_version": "algorithm version",
}


def _count_files(files: tuple[tuple[str, str], ...]) -> str:
    return f"{len(files)} file{'s' if len(files) != 1 else ''}" if files else "none"


def _inputs(manifest: RunManifest) -> dict[str, tuple[str, int | None]]:
    """Input name -> (content hash, size in bytes if recorded)."""
    names = [name for name, _ in manifest.inputs]
    # Manifests of earlier versions hold no sizes.
    sizes = dict(zip(names, manifest.input_sizes, strict=False))
    return {name: (identity, sizes.get(name)) for name, identity in manifest.inputs}


def _file_changes(what: str, old: RunManifest, new: RunManifest) -> list[str]:
    before, after = _inputs(old), _inputs(new)
    changes = [f"{what} {name} removed" for name in before if name not in after]
    changes += [f"{what} {name} added" for name in after if name not in before]
    for name, (identity, size) in after.items():
        if name not in before or before[name][0] == identity:
            continue
        old_size = before[name][1]
        if size is not None and old_size is not None and size != old_size:
            shown = f"{old_size:,} -> {size:,} bytes"
        else:
            shown = f"content {_short(before[name][0])} -> {_short(identity)}"
        changes.append(f"{what} {name} changed ({shown})")
    if not changes and list(before) != list(after):
        changes.append(f"{what} order {', '.join(before)} -> {', '.join(after)}")
    return changes


def build_manifest(
    config: RunConfig,
    models: ModelIdentities,
    adopted: tuple[tuple[str, str], ...] = (),
) -> RunManifest:
    """Hash ``config``'s inputs into its manifest, with its models' identities."""
    return RunManifest(
        inputs=tuple((path.name, file_identity(path)) for path in config.inputs),
        dnabert=models.dnabert,
        esm=models.esm,
        classifier=models.classifier,
        chunk_size=config.model_type,
        precision=config.options.precision,
        shard_size=config.options.shard_size,
        adopted=adopted,
        input_sizes=tuple(path.stat().st_size for path in config.inputs),
    )


def _short(value: object) -> str:
    """A content hash cut to 8 hex digits (enough to tell two apart)."""
    text = str(value)
    name, _, digits = text.partition(":")
    return f"{name}:{digits[:8]}" if digits else text


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
            if stored == manifest:
                return
            if store.layout.has_started():
                if changes := manifest.differences(stored):
                    raise PipelineError(
                        f"cannot resume the run in {path.parent.parent}, what changed: "
                        + "; ".join(changes)
                        + ". Its results would be stale: use --force to start over, "
                        "or restore the original inputs and settings"
                    )
                return
            # The run never finished preparing: no result depends on the old
            # manifest, so the corrected command takes the folder over.
            LOG.info("the run in %s never finished preparing; starting it over", path)
    # A tensor-free checkpoint: the manifest is its metadata.
    ckptkit.save(path, {}, schema=MANIFEST_SCHEMA, metadata=manifest.to_json())
