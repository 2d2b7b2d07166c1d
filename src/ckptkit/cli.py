"""The ``ckptkit`` command line: validate, inspect, ledger, cleanup, consolidate ...

The only ckptkit module that imports typer. Each command is a thin layer over the
library; :func:`exit_on_error` is the one place that turns expected errors into
one line on stderr and an exit code (``ckptkit.ExitCode``), with the traceback
only under ``--verbose``.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

import ckptkit
from ckptkit._atomic import _is_process_alive as is_process_alive
from ckptkit._atomic import find_temp_files, remove_stale_temp_files
from ckptkit._format import LEDGER_FILENAME, parse_temp_name
from ckptkit.distributed._commit import RecoveryAction, recover
from ckptkit.distributed._layout import is_sharded_checkpoint
from ckptkit.errors import CheckpointError
from ckptkit.ledger import FailureLedger, escape_field
from ckptkit.types import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ckptkit.info import CheckpointInfo
    from ckptkit.validation import ValidationReport

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
#: Exit code for Ctrl-C, as shells report SIGINT.
INTERRUPTED_EXIT_CODE = 130
#: Folders with at least this many checkpoints get a progress bar (on a terminal).
PROGRESS_MIN_CHECKPOINTS = 10

app = typer.Typer(
    name="ckptkit",
    help="Check, inspect and tidy ckptkit checkpoints (and legacy torch.save files).",
    # A bare `ckptkit` is a usage error (one line, exit 1), not a help page.
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show tracebacks of errors.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout instead of text.")
]


class LevelChoice(StrEnum):
    """Validation depth (see ``ckptkit.validate``)."""

    EXISTS = "exists"
    QUICK = "quick"
    FULL = "full"


def _text(value: object) -> str:
    r"""One printable line: breaks, controls, undecodable bytes as ``\n``, ``\x1b``."""
    return _UNPRINTABLE.sub(lambda match: escape_field(match.group()), str(value))


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def _fail(message: str, code: int, *, verbose: bool) -> typer.Exit:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"error: {_text(message)}", err=True)
    return typer.Exit(code=code)


def _os_message(error: OSError) -> str:
    where = error.filename if error.filename is not None else "ckptkit"
    return f"{where}: {error.strerror or error}; check the path and its permissions"


@contextmanager
def exit_on_error(*, verbose: bool = False) -> Iterator[None]:
    """Turn expected errors into one line on stderr and the matching exit code.

    Args:
        verbose: Also print the traceback.

    Raises:
        typer.Exit: ``CHECKPOINT`` (3) for checkpoint problems, ``FAILURE`` (1) for
            unreadable paths and bad values, 130 on Ctrl-C.
    """
    try:
        yield
    except CheckpointError as error:
        raise _fail(str(error), ExitCode.CHECKPOINT, verbose=verbose) from error
    except OSError as error:
        raise _fail(_os_message(error), ExitCode.FAILURE, verbose=verbose) from error
    except ValueError as error:
        raise _fail(str(error), ExitCode.FAILURE, verbose=verbose) from error
    except KeyboardInterrupt as error:
        raise _fail("interrupted", INTERRUPTED_EXIT_CODE, verbose=verbose) from error


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ckptkit {ckptkit.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show version."
        ),
    ] = False,
) -> None:
    """Check, inspect and tidy ckptkit checkpoints (and legacy torch.save files)."""
    del version


# --- validate ------------------------------------------------------------------


def _report_json(report: ValidationReport) -> dict[str, Any]:
    info = report.info
    return {
        "path": str(report.path),
        "ok": report.ok,
        "kind": report.kind,
        "reason": report.reason,
        "level": report.level,
        "format": None if info is None else _format_name(info),
        "version": None if info is None else info.version,
        "schema": None if info is None else info.schema,
        "status": None if info is None else info.status,
    }


def _tree_json(tree: ckptkit.TreeReport) -> dict[str, Any]:
    return {
        "checkpoints": [_report_json(report) for report in tree.reports],
        "not_checkpoints": [str(path) for path in tree.not_checkpoints],
        "temporary": [str(path) for path in tree.temporary],
        "errors": list(tree.errors),
        "ledgers": [str(path) for path in tree.ledger_paths],
        "summary": {
            "valid": tree.num_valid,
            "corrupted": tree.num_corrupted,
            "incompatible": tree.num_incompatible,
            "missing": tree.num_missing,
            "not_checkpoints": len(tree.not_checkpoints),
            "temporary": len(tree.temporary),
            "errors": len(tree.errors),
            "exit_code": int(tree.exit_code),
            "text": tree.summary(),
        },
    }


def _format_name(info: CheckpointInfo) -> str:
    """``ckptkit``, ``ckptkit-sharded`` (a folder), ``safetensors`` or ``torch``."""
    if getattr(info, "world_size", None) is not None:  # ckptkit.distributed
        return "ckptkit-sharded"
    return info.legacy_kind or "ckptkit"


def _report_line(report: ValidationReport) -> str:
    if not report.ok:
        return f"{(report.kind or 'failed').upper():<12} {_text(report.path)}: " + (
            _text(report.reason)
        )
    info = report.info
    details = ""
    if info is not None:
        details = f" ({_format_name(info)}, version {info.version}, {info.status})"
    return f"{'ok':<12} {_text(report.path)}{details}"


def _print_tree(tree: ckptkit.TreeReport) -> None:
    for report in tree.reports:
        typer.echo(_report_line(report))
    for path in tree.not_checkpoints:
        typer.echo(f"{'skipped':<12} {_text(path)}: not a checkpoint")
    for path in tree.temporary:
        typer.echo(
            f"{'skipped':<12} {_text(path)}: temporary file of an interrupted "
            f"writer (`ckptkit cleanup {_text(path.parent)}` removes it)"
        )
    for message in tree.errors:
        typer.echo(f"error: {_text(message)}", err=True)
    if tree.ledger_paths:
        where = ", ".join(_text(path) for path in tree.ledger_paths)
        typer.echo(f"failures recorded in {where}", err=True)
    if not tree.reports:
        typer.echo("no checkpoints found", err=True)
    typer.echo(tree.summary())


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("validating", total=None, visible=False)

        def update(done: int, total: int) -> None:
            visible = total >= PROGRESS_MIN_CHECKPOINTS
            bar.update(task, completed=done, total=total, visible=visible)

        yield update


def _ledger_choice(
    ledger_dir: Path | None, *, no_ledger: bool
) -> FailureLedger | Literal["folder"] | None:
    if no_ledger and ledger_dir is not None:
        msg = "--ledger and --no-ledger exclude each other; pass one of them"
        raise ValueError(msg)
    if no_ledger:
        return None
    if ledger_dir is not None:
        return FailureLedger(ledger_dir)
    return "folder"


@app.command()
def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Checkpoint files and folders (searched recursively).",
            metavar="PATH...",
        ),
    ],
    *,
    level: Annotated[
        LevelChoice, typer.Option(help="How deep to check.")
    ] = LevelChoice.FULL,
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            help="Dotted key every checkpoint must hold (repeatable).",
            metavar="KEY",
        ),
    ] = None,
    json_output: JsonOption = False,
    ledger_dir: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            help=f"Record failures in DIR/{LEDGER_FILENAME} "
            "(default: in each failed checkpoint's folder).",
            metavar="DIR",
        ),
    ] = None,
    no_ledger: Annotated[
        bool, typer.Option("--no-ledger", help="Record failures nowhere.")
    ] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Never show a progress bar.")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Validate checkpoints; exit 0 if all valid, 3 if any failed, 1 on errors."""
    with exit_on_error(verbose=verbose):
        ledger = _ledger_choice(ledger_dir, no_ledger=no_ledger)
        with _progress_bar(enabled=not no_progress) as progress:
            tree = ckptkit.validate_tree(
                paths,
                level=level.value,
                required_keys=tuple(require or ()),
                ledger=ledger,
                progress=progress,
            )
    if json_output:
        _echo_json(_tree_json(tree))
        for message in tree.errors:
            typer.echo(f"error: {_text(message)}", err=True)
    else:
        _print_tree(tree)
    raise typer.Exit(code=tree.exit_code)


# --- inspect -------------------------------------------------------------------


def _sharded_json(info: CheckpointInfo) -> dict[str, Any]:
    shards = getattr(info, "shards", None)
    if shards is None:
        return {}
    return {
        "world_size": getattr(info, "world_size", None),
        "shards": [{"file": s.file, "rank": s.rank, "size": s.size} for s in shards],
    }


def _info_json(info: CheckpointInfo) -> dict[str, Any]:
    return {
        "path": str(info.path),
        "format": _format_name(info),
        "format_version": info.format_version,
        "version": info.version,
        "schema": info.schema,
        "status": info.status,
        "created_at": info.created_at,
        "legacy": info.legacy,
        "file_size": info.file_size,
        "nbytes": info.nbytes,
        "tensor_count": info.tensor_count,
        "tensors": [
            {
                "name": t.name,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "nbytes": t.nbytes,
            }
            for t in info.tensors
        ],
        "metadata": info.metadata,
        "history": [record.to_json() for record in info.history],
        **_sharded_json(info),
    }


def _print_info(info: CheckpointInfo) -> None:
    kind = f"legacy {info.legacy_kind}" if info.legacy else "ckptkit"
    shards = getattr(info, "shards", None)
    if shards is not None:
        kind = "ckptkit sharded folder"
    lines = [
        f"path:         {_text(info.path)}",
        f"format:       {kind} (container format {info.format_version})",
        f"version:      {info.version}",
        f"schema:       {info.schema if info.schema is not None else '-'}",
        f"status:       {info.status}",
        f"created_at:   {info.created_at}",
        f"file size:    {info.file_size} bytes",
    ]
    if shards is not None:
        lines.append(
            f"saved by:     {getattr(info, 'world_size', '?')} ranks, "
            f"{len(shards)} shard files"
        )
        lines.extend(
            f"  {_text(s.file)}  rank {s.rank}  {s.size} bytes" for s in shards
        )
    lines += [f"tensors:      {info.tensor_count} ({info.nbytes} bytes)"]
    lines.extend(f"  {_text(t.name)}  {t.dtype}  {list(t.shape)}" for t in info.tensors)
    lines.append(f"metadata:     {json.dumps(info.metadata, sort_keys=True)}")
    lines.append(f"history:      {len(info.history)} migration steps")
    lines.extend(
        f"  {r.from_version} -> {r.to_version}  {r.step}  at {r.applied_at} "
        f"(ckptkit {r.ckptkit_version})"
        for r in info.history
    )
    typer.echo("\n".join(lines))


@app.command()
def inspect(
    path: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint file or sharded checkpoint folder.", metavar="PATH"
        ),
    ],
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Show a checkpoint's header: version, schema, status, tensors, metadata."""
    with exit_on_error(verbose=verbose):
        info = ckptkit.inspect(path)
    if json_output:
        _echo_json(_info_json(info))
    else:
        _print_info(info)


# --- ledger --------------------------------------------------------------------


def _ledger_folder(path: Path) -> Path:
    if path.is_file() and path.name == LEDGER_FILENAME:
        return path.parent
    if not path.is_dir():
        msg = f"{path}: no such folder; pass the folder that holds {LEDGER_FILENAME}"
        raise ValueError(msg)
    return path


@app.command(name="ledger")
def show_ledger(
    directory: Annotated[
        Path,
        typer.Argument(help=f"Folder holding {LEDGER_FILENAME}.", metavar="DIR"),
    ],
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """List recorded checkpoint failures, newest last, and malformed lines."""
    with exit_on_error(verbose=verbose):
        ledger = FailureLedger(_ledger_folder(directory))
        entries, malformed = ledger.entries(), ledger.malformed
    if json_output:
        _echo_json(
            {
                "ledger": str(ledger.path),
                "entries": [
                    {"path": e.path, "reason": e.reason, "timestamp": e.timestamp}
                    for e in entries
                ],
                "malformed": [{"line": n, "text": text} for n, text in malformed],
            }
        )
        return
    for entry in entries:
        typer.echo(f"{entry.timestamp}  {_text(entry.path)}: {_text(entry.reason)}")
    for number, text in malformed:
        typer.echo(f"malformed line {number}: {_text(text)}")
    typer.echo(
        f"{len(entries)} failures recorded in {_text(ledger.path)}"
        + (f", {len(malformed)} malformed lines" if malformed else "")
    )


# --- cleanup -------------------------------------------------------------------


def _folders(directory: Path, *, recursive: bool) -> list[Path]:
    if not directory.is_dir():
        msg = f"{directory}: no such folder; pass the folder holding the checkpoints"
        raise ValueError(msg)
    if not recursive:
        return [directory]
    return [directory, *sorted(p for p in directory.rglob("*") if p.is_dir())]


@app.command()
def cleanup(
    directory: Annotated[
        Path, typer.Argument(help="Folder holding checkpoints.", metavar="DIR")
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also clean sub-folders.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Remove temporary files left by writers that crashed or were killed."""
    with exit_on_error(verbose=verbose):
        removed: list[Path] = []
        kept: list[Path] = []
        sharded: list[RecoveryAction] = []
        for folder in _folders(directory, recursive=recursive):
            found = find_temp_files(folder)
            if dry_run:
                gone = [path for path in found if not _writer_alive(path)]
            else:
                gone = remove_stale_temp_files(folder)
            removed.extend(gone)
            kept.extend(path for path in found if path not in gone)
            sharded.extend(recover(folder, dry_run=dry_run))
    verb = "would remove" if dry_run else "removed"
    for path in removed:
        typer.echo(f"{verb} {_text(path)}")
    for path in kept:
        typer.echo(f"kept {_text(path)}: its writer is still running")
    _print_recovery(sharded, dry_run=dry_run)
    typer.echo(f"{verb} {len(removed)} temporary files" + _recovery_summary(sharded))


def _print_recovery(actions: list[RecoveryAction], *, dry_run: bool) -> None:
    """One line per staging or aside folder of an interrupted sharded save."""
    for action in actions:
        path = _text(action.path)
        if action.action == "kept":
            typer.echo(f"kept {path}: its writer is still running")
        elif action.action == "removed":
            verb = "would remove" if dry_run else "removed"
            typer.echo(f"{verb} {path} (unfinished sharded save)")
        else:
            verb = "would restore" if dry_run else "restored"
            typer.echo(f"{verb} {_text(action.target)} from {path}")


def _recovery_summary(actions: list[RecoveryAction]) -> str:
    folders = sum(action.action == "removed" for action in actions)
    restored = sum(action.action == "restored" for action in actions)
    parts = [f"{folders} unfinished sharded saves"] if folders else []
    parts += [f"{restored} checkpoints restored"] if restored else []
    return "".join(f", {part}" for part in parts)


def _writer_alive(path: Path) -> bool:
    parsed = parse_temp_name(path.name)
    return parsed is not None and is_process_alive(parsed[1])


# --- consolidate ---------------------------------------------------------------


@app.command()
def consolidate(
    sharded_dir: Annotated[
        Path,
        typer.Argument(help="A sharded checkpoint folder.", metavar="SHARDED_DIR"),
    ],
    output: Annotated[
        Path, typer.Argument(help="The single-file checkpoint to write.", metavar="OUT")
    ],
    verbose: VerboseOption = False,
) -> None:
    """Write a sharded checkpoint as one ordinary checkpoint file (all checked)."""
    with exit_on_error(verbose=verbose):
        if output.exists():
            msg = f"{output}: exists; remove it or choose another output"
            raise ValueError(msg)
        from ckptkit.distributed import consolidate as consolidate_folder

        info = consolidate_folder(sharded_dir, output)
    typer.echo(
        f"wrote {_text(info.path)}: {info.tensor_count} tensors, "
        f"{info.file_size} bytes (version {info.version}, {info.status})"
    )


# --- migrate -------------------------------------------------------------------


def _import_registry(reference: str) -> ckptkit.MigrationRegistry:
    """Import the user's registry; a broken one is a code problem (exit 1)."""
    # As with `python -m`: modules in the current folder are found first.
    here = str(Path.cwd())
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)
    registry = ckptkit.MigrationRegistry.from_reference(reference)
    try:
        registry.check()
    except ckptkit.MigrationError as error:
        raise ValueError(str(error)) from error
    return registry


def _check_migrate_arguments(
    paths: list[Path], output: Path | None, to_version: str | None
) -> None:
    from ckptkit._versions import parse_version

    if output is not None and len(paths) != 1:
        msg = "--output takes exactly one PATH"
        raise ValueError(msg)
    if to_version is not None:
        parse_version(to_version)
    for path in paths:
        if is_sharded_checkpoint(path):
            msg = (
                f"{path}: is a sharded checkpoint; migrate it on load "
                "(ckptkit.distributed.load(..., registry=)) or consolidate it first"
            )
            raise ValueError(msg)
        if path.is_dir():
            msg = f"{path}: is a folder; pass its checkpoint files ({path}/*.ckpt)"
            raise ValueError(msg)


@app.command()
def migrate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Checkpoint files to upgrade.", metavar="PATH..."),
    ],
    *,
    registry_reference: Annotated[
        str,
        typer.Option(
            "--registry",
            help="Your project's registry as package.module:attribute; that module "
            "is imported (run), from the current folder or the environment.",
            metavar="MODULE:ATTRIBUTE",
        ),
    ],
    to_version: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Target version (default: the registry's current).",
            metavar="VERSION",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show steps and changes; write nothing.")
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option("--no-backup", help="Keep no copy of files migrated in place."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Write the result here (one PATH only).", metavar="PATH"
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Upgrade checkpoints with a migration registry; exit 3 if any could not be."""
    with exit_on_error(verbose=verbose):
        _check_migrate_arguments(paths, output, to_version)
        registry = _import_registry(registry_reference)
    code: int = ExitCode.OK
    results = []
    for path in paths:  # every file is tried; each failure is one line
        try:
            with exit_on_error(verbose=verbose):
                result = ckptkit.migrate(
                    path,
                    registry,
                    to_version,
                    output=output,
                    backup=not no_backup,
                    dry_run=dry_run,
                )
        except typer.Exit as stop:
            code = max(code, stop.exit_code)
            continue
        results.append(result)
        if not json_output:
            typer.echo(
                "\n".join(_text(line) for line in result.describe().splitlines())
            )
    if json_output:
        _echo_json([result.to_json() for result in results])
    raise typer.Exit(code=code)


def main() -> None:
    """Entry point of the ``ckptkit`` console script and ``python -m ckptkit``."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as error:
        # Bad arguments: one line, and exit 1 (click's 2 means PARTIAL here).
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        typer.echo(f"error: {error.format_message()}{hint}", err=True)
        code = ExitCode.FAILURE
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        code = INTERRUPTED_EXIT_CODE
    sys.exit(int(code or 0))
