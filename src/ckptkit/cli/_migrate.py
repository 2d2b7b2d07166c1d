"""``ckptkit migrate``: upgrade checkpoint files with a project's registry."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import ckptkit
from ckptkit._file import fs
from ckptkit._file.sharded import is_sharded_checkpoint
from ckptkit._file.versions import parse_version
from ckptkit.cli._app import JsonOption, VerboseOption, app, exit_on_error
from ckptkit.cli._output import echo_json, printable
from ckptkit.migrations._disk import ExistingFileError
from ckptkit.types import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator


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
        if fs.is_dir(path):
            msg = f"{path}: is a folder; pass its checkpoint files ({path}/*.ckpt)"
            raise ValueError(msg)


@contextmanager
def _options_named(output: Path | None) -> Iterator[None]:
    """Say which option avoids a file that exists (from an earlier run, often)."""
    try:
        yield
    except ExistingFileError as error:
        if error.role == "backup":
            fix = "move it away, or pass --no-backup"
            what = "a backup of this version exists"
        else:
            fix = "remove it, or pass another --output"
            if output is None:
                fix = "remove it, or pass --output with another path"
            what = "output exists"
        msg = f"{error.filename}: {what} (from an earlier run?); {fix}"
        raise ValueError(msg) from error


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
            with exit_on_error(verbose=verbose), _options_named(output):
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
                "\n".join(printable(line) for line in result.describe().splitlines())
            )
    if json_output:
        echo_json([result.to_json() for result in results])
    raise typer.Exit(code=code)
