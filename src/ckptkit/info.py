"""Result types: what a checkpoint says about itself, and a loaded checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit.types import StateTree


@dataclass(frozen=True)
class TensorInfo:
    """One tensor stored in the container.

    Attributes:
        name: Entry name in the safetensors header (the dotted state path).
        dtype: torch dtype name of the stored bytes (``"float32"``).
        shape: Stored shape.
        nbytes: Stored size in bytes.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    def to_json(self) -> dict[str, Any]:
        """The tensor's description as plain JSON data.

        Returns:
            ``{"name", "dtype", "shape" (a list), "nbytes"}``.
        """
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
        }


@dataclass(frozen=True)
class MigrationRecord:
    """One migration step that was applied to a checkpoint's state.

    Attributes:
        from_version: Version before the step.
        to_version: Version after the step.
        step: Qualified name of the migration function.
        applied_at: UTC ISO-8601 time the step ran.
        ckptkit_version: ckptkit release that ran it.
    """

    from_version: str
    to_version: str
    step: str
    applied_at: str
    ckptkit_version: str

    def to_json(self) -> dict[str, str]:
        """The record as stored in the header."""
        return {
            "from": self.from_version,
            "to": self.to_version,
            "step": self.step,
            "applied_at": self.applied_at,
            "ckptkit_version": self.ckptkit_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> MigrationRecord:
        """Parse a record from the header."""
        return cls(
            from_version=str(data["from"]),
            to_version=str(data["to"]),
            step=str(data["step"]),
            applied_at=str(data["applied_at"]),
            ckptkit_version=str(data["ckptkit_version"]),
        )


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint file says about itself (read from its header only).

    Attributes:
        path: The file.
        format_version: Container format (``1`` for ckptkit files, ``0`` legacy).
        version: Version of the state (``"1.0"``; ``"0.x"`` for legacy files).
        schema: Name of the state's schema, or None.
        status: ``"in_progress"`` or ``"complete"``.
        created_at: UTC ISO-8601 time of writing (file mtime for legacy files).
        metadata: The caller's JSON metadata.
        tensor_count: Number of tensors stored.
        nbytes: Total size of the tensor bytes.
        legacy: True for files without a ckptkit header (read-only).
        history: Migration steps applied to the state, oldest first.
        tensors: Name, dtype and shape of each stored tensor.
        file_size: Size of the file in bytes.
        legacy_kind: ``"torch"`` or ``"safetensors"`` for legacy files, else None.
    """

    path: Path
    format_version: int
    version: str
    schema: str | None
    status: str
    created_at: str
    metadata: dict[str, Any]
    tensor_count: int
    nbytes: int
    legacy: bool
    history: tuple[MigrationRecord, ...] = ()
    tensors: tuple[TensorInfo, ...] = ()
    file_size: int = 0
    legacy_kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The information as plain JSON data (what ``ckptkit inspect --json`` prints).

        Returns:
            Every field, with ``format`` (``"ckptkit"``, or ``legacy_kind`` for a
            legacy file) in place of ``legacy_kind``, paths as text and tensors
            and history records as JSON objects.

        Example:
            >>> import ckptkit, tempfile, pathlib
            >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
            >>> data = ckptkit.save(target, {"x": 1}, schema="demo").to_json()
            >>> data["format"], data["schema"], data["tensors"]
            ('ckptkit', 'demo', [])
        """
        return {
            "path": str(self.path),
            "format": self.legacy_kind or "ckptkit",
            "format_version": self.format_version,
            "version": self.version,
            "schema": self.schema,
            "status": self.status,
            "created_at": self.created_at,
            "legacy": self.legacy,
            "file_size": self.file_size,
            "nbytes": self.nbytes,
            "tensor_count": self.tensor_count,
            "tensors": [tensor.to_json() for tensor in self.tensors],
            "metadata": self.metadata,
            "history": [record.to_json() for record in self.history],
        }


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        state: The nested state, as saved (or migrated, when a registry was given).
        info: The file's header information.
        applied: Migration steps applied while loading (empty without a registry).
    """

    state: StateTree
    info: CheckpointInfo
    applied: tuple[MigrationRecord, ...] = field(default=())
