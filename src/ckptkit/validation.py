"""validate(): check a checkpoint at a chosen depth and report, never raise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from ckptkit._codec import decode_tree
from ckptkit._legacy import safe_torch_load
from ckptkit._load import torch_pickle_info
from ckptkit._reader import (
    ParsedFile,
    info_from_parsed,
    open_checkpoint,
    parse_open,
    verify_buffer,
    verify_entry,
)
from ckptkit.errors import CheckpointCorruptError, CheckpointError, ErrorKind
from ckptkit.keys import has_key, lookup

if TYPE_CHECKING:
    from collections.abc import Sequence
    from io import FileIO

    from ckptkit.info import CheckpointInfo
    from ckptkit.types import PathLike

Level = Literal["exists", "quick", "full"]
LEVELS: tuple[Level, ...] = ("exists", "quick", "full")


class FailureRecorder(Protocol):
    """Anything that records failed checkpoints (``ckptkit.FailureLedger``)."""

    def record(self, path: PathLike, reason: str) -> object:
        """Record that ``path`` failed for ``reason``."""
        ...


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one checkpoint.

    Attributes:
        path: The file checked.
        ok: True when every check of the level passed.
        level: ``"exists"``, ``"quick"`` or ``"full"``.
        kind: None when ok, else ``"missing"``, ``"corrupted"`` or ``"incompatible"``.
        reason: One line a person can act on (``"ok"`` when ok).
        info: Header information, when the header could be read.
    """

    path: Path
    ok: bool
    level: str
    kind: ErrorKind | None
    reason: str
    info: CheckpointInfo | None = None


def _verify_tensors(parsed: ParsedFile, handle: FileIO) -> None:
    buffer = verify_buffer()
    for spec in sorted(parsed.entries.values(), key=lambda e: e.begin):
        verify_entry(handle, parsed, spec, buffer)


def _missing_keys(
    parsed: ParsedFile, legacy_state: object, required_keys: Sequence[str]
) -> list[str]:
    if parsed.kind == "ckptkit":
        return [k for k in required_keys if not has_key(parsed.header["tree"], k)]
    if parsed.kind == "safetensors":
        return [k for k in required_keys if k not in parsed.entries]
    return [k for k in required_keys if not _legacy_has(legacy_state, k)]


def _legacy_has(state: object, key: str) -> bool:
    missing = object()
    return lookup(state, key, missing) is not missing


def _run_checks(
    path: Path, level: Level, required_keys: Sequence[str]
) -> CheckpointInfo | None:
    if path.is_dir() or not path.exists():  # maybe a sharded checkpoint folder
        from ckptkit.distributed._hooks import validate_folder

        sharded, info = validate_folder(path, level, required_keys)
        if sharded:
            return info
    with open_checkpoint(path) as handle:
        if level == "exists":
            if not handle.read(1):
                raise CheckpointCorruptError(
                    path, "file is empty; restore or recompute it"
                )
            return None
        parsed = parse_open(path, handle)
        legacy_state: object = None
        if parsed.kind == "torch":
            # The only way to check a pickle is to read it: always safely.
            legacy_state = safe_torch_load(path, handle=handle)
        elif parsed.kind == "ckptkit":
            leaves = parsed.header["leaves"]
            decode_tree(parsed.header["tree"], lambda _kind, index: leaves[index])
        if level == "full" and parsed.kind != "torch":
            _verify_tensors(parsed, handle)
        missing = _missing_keys(parsed, legacy_state, required_keys)
        if missing:
            reason = f"required keys missing from the state: {', '.join(missing)}"
            raise CheckpointCorruptError(path, reason)
        if parsed.kind == "torch":
            return torch_pickle_info(path, parsed.file_size, legacy_state)
        return info_from_parsed(parsed)


def validate(
    path: PathLike,
    *,
    level: Level = "full",
    required_keys: Sequence[str] = (),
    ledger: FailureRecorder | None = None,
) -> ValidationReport:
    """Check a checkpoint and report what is wrong; never raises for a bad file.

    Levels: ``"exists"`` (present, non-empty, readable) < ``"quick"`` (header
    parses, format and version understood, tensor offsets inside the file without
    overlap, tree and tensors agree) < ``"full"`` (quick plus every checksum).

    Args:
        path: The checkpoint file, or a sharded checkpoint folder
            (``ckptkit.distributed``; a failure's reason names the shard file).
        level: How deep to check.
        required_keys: Dotted paths that must exist in the state.
        ledger: Where a failure is recorded (``ckptkit.FailureLedger``), if given.

    Returns:
        The report; ``report.ok`` tells the verdict, ``report.reason`` the fix.

    Raises:
        ValueError: An unknown ``level`` (a programming error, not a bad file).

    Example:
        >>> import ckptkit, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(target, {"x": 1})
        >>> ckptkit.validate(target).ok
        True
    """
    if level not in LEVELS:
        msg = f"level must be one of {LEVELS}, not {level!r}"
        raise ValueError(msg)
    target = Path(path)
    try:
        info = _run_checks(target, level, required_keys)
    except CheckpointError as error:
        report = ValidationReport(
            target, ok=False, level=level, kind=error.kind, reason=error.reason
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        reason = f"unreadable: {type(error).__name__}: {error}".splitlines()[0]
        report = ValidationReport(
            target, ok=False, level=level, kind="corrupted", reason=reason
        )
    else:
        return ValidationReport(
            target, ok=True, level=level, kind=None, reason="ok", info=info
        )
    if ledger is not None:
        ledger.record(target, report.reason)
    return report
