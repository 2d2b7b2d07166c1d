"""Validation of a checkpoint: report what is wrong, never raise for a bad file.

``validate`` checks one checkpoint at a chosen depth; ``ckptkit.tree_validation``
checks every checkpoint found in files and folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ckptkit._file import fs
from ckptkit._file.header import ParsedFile, open_checkpoint, parse_open
from ckptkit._file.reader import info_from_parsed, read_structure, torch_pickle_info
from ckptkit._file.sharded import may_be_sharded
from ckptkit._file.tensors import verify_all
from ckptkit.errors import CheckpointCorruptError, CheckpointError
from ckptkit.keys import has_key, key_paths, key_text
from ckptkit.legacy import _load_legacy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ckptkit.info import CheckpointInfo
    from ckptkit.keys import KeyPath
    from ckptkit.ledger import FailureRecorder
    from ckptkit.types import PathLike

Level = Literal["exists", "quick", "full"]
LEVELS: tuple[Level, ...] = ("exists", "quick", "full")
#: What a report says went wrong: a ``CheckpointError`` kind, or ``"missing_keys"``
#: for an intact checkpoint that lacks keys the caller requires.
ReportKind = Literal["missing", "corrupted", "incompatible", "missing_keys"]
MISSING_KEYS: Literal["missing_keys"] = "missing_keys"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one checkpoint.

    Attributes:
        path: The file checked.
        ok: True when every check of the level passed.
        level: ``"exists"``, ``"quick"`` or ``"full"``.
        kind: None when ok, else ``"missing"``, ``"corrupted"``, ``"incompatible"``
            or ``"missing_keys"`` (intact, but without a required key; such a
            report is never recorded in a ledger).
        reason: One line a person can act on (``"ok"`` when ok).
        info: Header information, when the header could be read.
    """

    path: Path
    ok: bool
    level: str
    kind: ReportKind | None
    reason: str
    info: CheckpointInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data (one entry of ``ckptkit validate --json``).

        Returns:
            ``path``, ``ok``, ``kind``, ``reason``, ``level``, and from the header
            (None when it could not be read): ``format`` (``"ckptkit"``,
            ``"ckptkit-sharded"``, ``"safetensors"`` or ``"torch"``), ``version``,
            ``schema``, ``status``.

        Example:
            >>> import ckptkit, tempfile, pathlib
            >>> missing = pathlib.Path(tempfile.mkdtemp()) / "none.ckpt"
            >>> data = ckptkit.validate(missing).to_json()
            >>> data["ok"], data["kind"], data["format"]
            (False, 'missing', None)
        """
        info = self.info
        return {
            "path": str(self.path),
            "ok": self.ok,
            "kind": self.kind,
            "reason": self.reason,
            "level": self.level,
            "format": None if info is None else info.to_json()["format"],
            "version": None if info is None else info.version,
            "schema": None if info is None else info.schema,
            "status": None if info is None else info.status,
        }


def _missing_keys(
    parsed: ParsedFile, state: object, required: Sequence[tuple[Any, ...]]
) -> list[str]:
    if parsed.kind == "safetensors":
        return [key_text(k) for k in required if key_text(k) not in parsed.entries]
    return [key_text(k) for k in required if not has_key(state, k)]


def _run_checks(
    path: Path, level: Level, required_keys: Sequence[tuple[Any, ...]]
) -> tuple[CheckpointInfo | None, list[str]]:
    """The header information, and the required keys (dotted) the state lacks."""
    if may_be_sharded(path):
        from ckptkit.distributed._hooks import validate_folder

        sharded, info, missing = validate_folder(path, level, required_keys)
        if sharded:
            return info, missing
    with open_checkpoint(path) as handle:
        if level == "exists":
            if not fs.read(handle, 1):
                raise CheckpointCorruptError(
                    path, "file is empty; restore or recompute it"
                )
            return None, []
        parsed = parse_open(path, handle)
        if parsed.kind == "torch":
            # The only way to check a pickle is to read it: always safely.
            state, storages = _load_legacy(path, handle=handle)
            info = torch_pickle_info(parsed, handle, state, storages)
            return info, _missing_keys(parsed, state, required_keys)
        # Reading a ckptkit file's structure checks that its tree decodes.
        state = read_structure(parsed, handle) if parsed.kind == "ckptkit" else None
        if level == "full":
            verify_all(handle, parsed)
        return info_from_parsed(parsed), _missing_keys(parsed, state, required_keys)


def validate(
    path: PathLike,
    *,
    level: Level = "full",
    required_keys: Sequence[KeyPath] = (),
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
        required_keys: Key paths that must exist in the state (``"model.w"``, or
            parts for names with dots: ``("model", "_orig_mod.w")``; see
            ``ckptkit.keys``). An intact file without one is reported with kind
            ``"missing_keys"``, which is never recorded in ``ledger``.
        ledger: Where a failure is recorded (``ckptkit.FailureLedger``), if given.

    Returns:
        The report; ``report.ok`` tells the verdict, ``report.reason`` the fix.

    Raises:
        ValueError: An unknown ``level`` (a programming error, not a bad file).
        TypeError: ``required_keys`` is not a list of key paths (a single str).
        PermissionError: The file cannot be read by this user (not damage).

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
    required = key_paths(required_keys, argument="required_keys")
    target = Path(path)
    try:
        info, missing = _run_checks(target, level, required)
    except CheckpointError as error:
        report = ValidationReport(
            target, ok=False, level=level, kind=error.kind, reason=error.reason
        )
    except PermissionError:
        raise  # the caller's environment, not the file: raised as it is
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        ArithmeticError,
        RecursionError,
    ) as error:
        reason = f"unreadable: {type(error).__name__}: {error}".splitlines()[0]
        report = ValidationReport(
            target, ok=False, level=level, kind="corrupted", reason=reason
        )
    else:
        if missing:  # not damage: reported as its own outcome and never recorded
            reason = (
                f"required keys missing from the state: {', '.join(missing)} "
                "(the file is intact; check the key or the checkpoint chosen)"
            )
            return ValidationReport(
                target, ok=False, level=level, kind=MISSING_KEYS, reason=reason
            )
        return ValidationReport(
            target, ok=True, level=level, kind=None, reason="ok", info=info
        )
    if ledger is not None:
        ledger.record(target, report.reason)
    return report
