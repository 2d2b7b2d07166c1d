"""Validation of many checkpoints at once: files and folders, every problem kept.

``validate_tree`` finds the checkpoints under some paths, validates each with
``ckptkit.validate`` and gathers the outcome into a ``TreeReport`` (the
``ckptkit validate`` command line prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ckptkit._file import fs
from ckptkit._file.discovery import discover
from ckptkit.keys import key_paths
from ckptkit.ledger import FailureLedger, FailureRecorder
from ckptkit.types import ExitCode
from ckptkit.validation import LEVELS, MISSING_KEYS, ValidationReport, validate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ckptkit.keys import KeyPath
    from ckptkit.types import PathLike
    from ckptkit.validation import Level

#: ``ledger=FOLDER_LEDGERS``: record each failure in the ledger of its own folder.
FOLDER_LEDGERS: Literal["folder"] = "folder"


@dataclass(frozen=True)
class TreeReport:
    """The outcome of validating every checkpoint found under some paths.

    Attributes:
        reports: One report per checkpoint, in the order found.
        not_checkpoints: Files in the folders that are no checkpoint (by content).
        temporary: Temporary files of interrupted writers (skipped).
        errors: One line per folder or file that could not be read, or failure
            that could not be recorded.
        ledger_paths: Ledger files that received at least one failure.
    """

    reports: tuple[ValidationReport, ...]
    not_checkpoints: tuple[Path, ...] = ()
    temporary: tuple[Path, ...] = ()
    errors: tuple[str, ...] = ()
    ledger_paths: tuple[Path, ...] = ()

    def _count(self, kind: str | None) -> int:
        return sum(report.kind == kind for report in self.reports)

    @property
    def num_valid(self) -> int:
        """Checkpoints that passed."""
        return self._count(None)

    @property
    def num_corrupted(self) -> int:
        """Checkpoints that are damaged."""
        return self._count("corrupted")

    @property
    def num_incompatible(self) -> int:
        """Intact checkpoints this ckptkit cannot or must not use."""
        return self._count("incompatible")

    @property
    def num_missing(self) -> int:
        """Named checkpoints that do not exist."""
        return self._count("missing")

    @property
    def num_missing_keys(self) -> int:
        """Intact checkpoints that lack a required key."""
        return self._count(MISSING_KEYS)

    @property
    def ok(self) -> bool:
        """True when every checkpoint is valid and every place could be read."""
        return self.exit_code is ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        """The verdict: ``CHECKPOINT``, ``MISSING_KEYS``, ``FAILURE`` or ``OK``.

        ``CHECKPOINT`` if any checkpoint is corrupted, incompatible or missing;
        else ``MISSING_KEYS`` if any lacks a required key; else ``FAILURE`` if a
        place could not be read or a failure not recorded; else ``OK``. Files
        that are not checkpoints and skipped temporary files do not count.
        """
        if any(not r.ok and r.kind != MISSING_KEYS for r in self.reports):
            return ExitCode.CHECKPOINT
        if self.num_missing_keys:
            return ExitCode.MISSING_KEYS
        if self.errors:
            return ExitCode.FAILURE
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The whole outcome as plain JSON data (``ckptkit validate --json``).

        Returns:
            ``checkpoints`` (each report's ``to_json()``), ``not_checkpoints``,
            ``temporary``, ``errors``, ``ledgers`` and a ``summary`` of the counts,
            the exit code and the summary line.
        """
        return {
            "checkpoints": [report.to_json() for report in self.reports],
            "not_checkpoints": [str(path) for path in self.not_checkpoints],
            "temporary": [str(path) for path in self.temporary],
            "errors": list(self.errors),
            "ledgers": [str(path) for path in self.ledger_paths],
            "summary": {
                "valid": self.num_valid,
                "corrupted": self.num_corrupted,
                "incompatible": self.num_incompatible,
                "missing": self.num_missing,
                "missing_keys": self.num_missing_keys,
                "not_checkpoints": len(self.not_checkpoints),
                "temporary": len(self.temporary),
                "errors": len(self.errors),
                "exit_code": int(self.exit_code),
                "text": self.summary(),
            },
        }

    def summary(self) -> str:
        """One line: ``N valid, M corrupted, K incompatible`` and what else was seen."""
        parts = [
            f"{self.num_valid} valid",
            f"{self.num_corrupted} corrupted",
            f"{self.num_incompatible} incompatible",
        ]
        extras = (
            (self.num_missing, "missing"),
            (self.num_missing_keys, "missing keys"),
            (len(self.not_checkpoints), "not checkpoints"),
            (len(self.temporary), "temporary files skipped"),
            (len(self.errors), "errors"),
        )
        parts.extend(f"{count} {label}" for count, label in extras if count)
        return ", ".join(parts)


class _Recorder:
    """Records failures in one given ledger or in each checkpoint folder's own."""

    def __init__(self, ledger: FailureRecorder | Literal["folder"] | None) -> None:
        self._ledger = ledger
        self._per_folder: dict[Path, FailureLedger] = {}
        self.errors: list[str] = []
        self.written: dict[Path, None] = {}  # ledger files, in first-use order

    def _target(self, path: Path) -> FailureRecorder | None:
        if self._ledger != FOLDER_LEDGERS:
            return self._ledger
        folder = path.parent
        if not fs.is_dir(folder):
            return None  # never create folders for a checkpoint that is not there
        return self._per_folder.setdefault(folder, FailureLedger(folder))

    def record(self, report: ValidationReport) -> None:
        if report.kind == MISSING_KEYS:
            return  # the caller's expectation, not damage: never recorded
        if report.kind == "missing" and self._ledger == FOLDER_LEDGERS:
            # Nothing is there to keep a record next to: a mistyped path must not
            # leave a ledger file behind in whatever folder holds it.
            return
        path = report.path.absolute()
        target = self._target(path)
        if target is None:
            return
        where = getattr(target, "path", None)
        try:
            target.record(path, report.reason)
        except OSError as error:
            self.errors.append(
                f"{where or target}: cannot record the failure of {path} "
                f"({error.strerror}); make the ledger writable or record it elsewhere"
            )
        else:
            if isinstance(where, Path):
                self.written[where] = None


def validate_tree(
    paths: Iterable[PathLike],
    *,
    level: Level = "full",
    required_keys: Sequence[KeyPath] = (),
    ledger: FailureRecorder | Literal["folder"] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TreeReport:
    """Validate every checkpoint in the given files and folders; never stops early.

    Folders are searched recursively and their files classified by content
    (ckptkit, plain safetensors and ``torch.save`` files are checkpoints); files
    named explicitly are always validated. Temporary files of interrupted writers
    are skipped and listed.

    Args:
        paths: Checkpoint files and folders.
        level: ``"exists"``, ``"quick"`` or ``"full"`` (see ``ckptkit.validate``).
        required_keys: Key paths every checkpoint's state must contain (see
            ``ckptkit.validate``).
        ledger: Where failures are recorded: a ``FailureLedger`` (or anything with
            ``record(path, reason)``), ``"folder"`` for the ledger in each failed
            checkpoint's own folder (a path that does not exist is reported, never
            recorded there: nothing is created next to a mistyped path), or None.
            Paths are recorded absolute.
        progress: Called with ``(done, total)`` before the first and after each
            checkpoint.

    Returns:
        Every report plus what else was found; ``.exit_code`` gives the verdict.

    Raises:
        ValueError: An unknown ``level``.
        TypeError: ``required_keys`` is not a list of key paths.

    Example:
        >>> import ckptkit, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = ckptkit.save(folder / "a.ckpt", {"x": 1})
        >>> (folder / "notes.txt").write_text("hello")
        5
        >>> ckptkit.validate_tree([folder]).summary()
        '1 valid, 0 corrupted, 0 incompatible, 1 not checkpoints'
    """
    if level not in LEVELS:
        msg = f"level must be one of {LEVELS}, not {level!r}"
        raise ValueError(msg)
    required = key_paths(required_keys, argument="required_keys")
    found = discover(paths)
    recorder = _Recorder(ledger)
    total = len(found.checkpoints)
    reports: list[ValidationReport] = []
    if progress is not None:
        progress(0, total)
    errors: list[str] = []
    for index, path in enumerate(found.checkpoints, start=1):
        try:
            report = validate(path, level=level, required_keys=required)
        except PermissionError as error:
            errors.append(
                f"{path}: cannot read it ({error.strerror}); check its permissions"
            )
        else:
            if not report.ok:
                recorder.record(report)
            reports.append(report)
        if progress is not None:
            progress(index, total)
    return TreeReport(
        reports=tuple(reports),
        not_checkpoints=tuple(found.not_checkpoints),
        temporary=tuple(found.temporary),
        errors=tuple(found.errors + errors + recorder.errors),
        ledger_paths=tuple(recorder.written),
    )
