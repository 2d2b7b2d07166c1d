"""``ckptkit inspect``, ``ledger``, ``cleanup``, ``consolidate``: one file or folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import ckptkit
from ckptkit._file import fs
from ckptkit._file.atomic import find_temp_files, is_stale, remove_stale_temp_files
from ckptkit._file.format import LEDGER_FILENAME
from ckptkit.cli._app import JsonOption, VerboseOption, app, exit_on_error
from ckptkit.cli._output import echo_json, printable
from ckptkit.distributed._commit import RecoveryAction, recover
from ckptkit.distributed._info import ShardedCheckpointInfo
from ckptkit.ledger import FailureLedger

if TYPE_CHECKING:
    from ckptkit.info import CheckpointInfo


def _shard_lines(info: ShardedCheckpointInfo) -> list[str]:
    return [
        f"saved by:     {info.world_size} ranks, {len(info.shards)} shard files",
        *(f"  {printable(s.file)}  rank {s.rank}  {s.size} bytes" for s in info.shards),
    ]


def _print_info(info: CheckpointInfo) -> None:
    kind = f"legacy {info.legacy_kind}" if info.legacy else "ckptkit"
    if isinstance(info, ShardedCheckpointInfo):
        kind = "ckptkit sharded folder"
    lines = [
        f"path:         {printable(info.path)}",
        f"format:       {kind} (container format {info.format_version})",
        f"version:      {info.version}",
        f"schema:       {info.schema if info.schema is not None else '-'}",
        f"status:       {info.status}",
        f"created_at:   {info.created_at}",
        f"file size:    {info.file_size} bytes",
        *(_shard_lines(info) if isinstance(info, ShardedCheckpointInfo) else []),
        f"tensors:      {info.tensor_count} ({info.nbytes} bytes)",
        *(f"  {printable(t.name)}  {t.dtype}  {list(t.shape)}" for t in info.tensors),
        f"metadata:     {json.dumps(info.metadata, sort_keys=True)}",
        f"history:      {len(info.history)} migration steps",
        *(
            f"  {r.from_version} -> {r.to_version}  {r.step}  at {r.applied_at} "
            f"(ckptkit {r.ckptkit_version})"
            for r in info.history
        ),
    ]
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
        sharded: list[RecoveryAction] = []
        for folder in _folders(directory, recursive=recursive):
            found = find_temp_files(folder)
            if dry_run:
                gone = [path for path in found if is_stale(path)]
            else:
                gone = remove_stale_temp_files(folder)
            removed.extend(gone)
            kept.extend(path for path in found if path not in gone)
            sharded.extend(recover(folder, dry_run=dry_run))
    verb = "would remove" if dry_run else "removed"
    for path in removed:
        typer.echo(f"{verb} {printable(path)}")
    for path in kept:
        typer.echo(f"kept {printable(path)}: its writer is still running")
    _print_recovery(sharded, dry_run=dry_run)
    typer.echo(f"{verb} {len(removed)} temporary files" + _recovery_summary(sharded))


def _print_recovery(actions: list[RecoveryAction], *, dry_run: bool) -> None:
    """One line per staging or aside folder of an interrupted sharded save."""
    for action in actions:
        path = printable(action.path)
        if action.action == "kept":
            typer.echo(f"kept {path}: its writer is still running")
        elif action.action == "removed":
            verb = "would remove" if dry_run else "removed"
            typer.echo(f"{verb} {path} (unfinished sharded save)")
        else:
            verb = "would restore" if dry_run else "restored"
            typer.echo(f"{verb} {printable(action.target)} from {path}")


def _recovery_summary(actions: list[RecoveryAction]) -> str:
    folders = sum(action.action == "removed" for action in actions)
    restored = sum(action.action == "restored" for action in actions)
    parts = [f"{folders} unfinished sharded saves"] if folders else []
    parts += [f"{restored} checkpoints restored"] if restored else []
    return "".join(f", {part}" for part in parts)


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
        if fs.exists(output):
            msg = f"{output}: exists; remove it or choose another output"
            raise ValueError(msg)
        from ckptkit.distributed import consolidate as consolidate_folder

        info = consolidate_folder(sharded_dir, output)
    typer.echo(
        f"wrote {printable(info.path)}: {info.tensor_count} tensors, "
        f"{info.file_size} bytes (version {info.version}, {info.status})"
    )
