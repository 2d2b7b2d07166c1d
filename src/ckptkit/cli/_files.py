"""``ckptkit inspect``, ``ledger`` and ``cleanup``: one file or folder at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import ckptkit
from ckptkit._file import fs
from ckptkit._file.atomic import find_temp_files, is_stale, remove_stale_temp_files
from ckptkit._file.format import LEDGER_FILENAME
from ckptkit.cli._app import (
    JsonOption,
    VerboseOption,
    app,
    echo_json,
    exit_on_error,
    printable,
)
from ckptkit.ledger import FailureLedger

if TYPE_CHECKING:
    from ckptkit.info import CheckpointInfo


def _print_info(info: CheckpointInfo) -> None:
    kind = f"legacy {info.legacy_kind}" if info.legacy else "ckptkit"
    lines = [
        f"path:         {printable(info.path)}",
        f"format:       {kind} (container format {info.format_version})",
        f"version:      {info.version}",
        f"schema:       {info.schema if info.schema is not None else '-'}",
        f"status:       {info.status}",
        f"created_at:   {info.created_at}",
        f"file size:    {info.file_size} bytes",
        f"tensors:      {info.tensor_count} ({info.nbytes} bytes)",
    ]
    lines.extend(
        f"  {printable(t.name)}  {t.dtype}  {list(t.shape)}" for t in info.tensors
    )
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
    path: Annotated[Path, typer.Argument(help="A checkpoint file.", metavar="PATH")],
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Show a checkpoint's header: version, schema, status, tensors, metadata."""
    with exit_on_error(verbose=verbose):
        info = ckptkit.inspect(path)
    if json_output:
        echo_json(info.to_json())
    else:
        _print_info(info)


def _ledger_folder(path: Path) -> Path:
    if path.name == LEDGER_FILENAME and fs.is_file(path):
        return path.parent
    if not fs.is_dir(path):
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
        echo_json(
            {
                "ledger": str(ledger.path),
                "entries": [entry.to_json() for entry in entries],
                "malformed": [{"line": n, "text": text} for n, text in malformed],
            }
        )
        return
    for entry in entries:
        typer.echo(
            f"{entry.timestamp}  {printable(entry.path)}: {printable(entry.reason)}"
        )
    for number, text in malformed:
        typer.echo(f"malformed line {number}: {printable(text)}")
    typer.echo(
        f"{len(entries)} failures recorded in {printable(ledger.path)}"
        + (f", {len(malformed)} malformed lines" if malformed else "")
    )


def _folders(directory: Path, *, recursive: bool) -> list[Path]:
    if not fs.is_dir(directory):
        msg = f"{directory}: no such folder; pass the folder holding the checkpoints"
        raise ValueError(msg)
    if not recursive:
        return [directory]
    # Links to folders are neither descended into nor cleaned: they may lead out
    # of the folder tree the caller named.
    below = (
        Path(root) / name
        for root, dirs, _ in fs.walk(directory)
        for name in dirs
        if not fs.is_symlink(Path(root) / name)
    )
    return [directory, *sorted(below)]


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
        for folder in _folders(directory, recursive=recursive):
            found = find_temp_files(folder)
            if dry_run:
                gone = [path for path in found if is_stale(path)]
            else:
                gone = remove_stale_temp_files(folder)
            removed.extend(gone)
            kept.extend(path for path in found if path not in gone)
    verb = "would remove" if dry_run else "removed"
    for path in removed:
        typer.echo(f"{verb} {printable(path)}")
    for path in kept:
        typer.echo(f"kept {printable(path)}: its writer is still running")
    typer.echo(f"{verb} {len(removed)} temporary files")
