"""``ckptkit validate``: every checkpoint found, every problem reported."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import TYPE_CHECKING, Annotated, Literal

import typer

import ckptkit
from ckptkit._file.format import LEDGER_FILENAME
from ckptkit.cli._app import JsonOption, VerboseOption, app, exit_on_error
from ckptkit.cli._output import echo_json, printable
from ckptkit.ledger import FailureLedger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ckptkit.validation import ValidationReport

#: Folders with at least this many checkpoints get a progress bar (on a terminal).
PROGRESS_MIN_CHECKPOINTS = 10


class LevelChoice(StrEnum):
    """Validation depth (see ``ckptkit.validate``)."""

    EXISTS = "exists"
    QUICK = "quick"
    FULL = "full"


def _report_line(report: ValidationReport) -> str:
    if not report.ok:
        kind = (report.kind or "failed").upper()
        return f"{kind:<12} {printable(report.path)}: {printable(report.reason)}"
    info = report.info
    details = ""
    if info is not None:
        kind = info.to_json()["format"]  # ckptkit-sharded for a sharded folder
        details = f" ({kind}, version {info.version}, {info.status})"
    return f"{'ok':<12} {printable(report.path)}{details}"


def _print_tree(tree: ckptkit.TreeReport) -> None:
    for report in tree.reports:
        typer.echo(_report_line(report))
    for path in tree.not_checkpoints:
        typer.echo(f"{'skipped':<12} {printable(path)}: not a checkpoint")
    for path in tree.temporary:
        typer.echo(
            f"{'skipped':<12} {printable(path)}: temporary file of an interrupted "
            f"writer (`ckptkit cleanup {printable(path.parent)}` removes it)"
        )
    for message in tree.errors:
        typer.echo(f"error: {printable(message)}", err=True)
    if tree.ledger_paths:
        where = ", ".join(printable(path) for path in tree.ledger_paths)
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
        echo_json(tree.to_json())
        for message in tree.errors:
            typer.echo(f"error: {printable(message)}", err=True)
    else:
        _print_tree(tree)
    raise typer.Exit(code=tree.exit_code)
