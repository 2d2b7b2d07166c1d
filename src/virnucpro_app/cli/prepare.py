"""``virnucpro-app prepare``: FASTA -> chunks and stop-free frames, as VirNucPro does.

Writes ``chunks.fa``, ``orfs.nucleotide.fa``, ``orfs.protein.faa`` and
``records.tsv`` to ``--output-dir``. Exit codes: 0 every record prepared (or
without a stop-free frame), 1 the run stopped (bad input, existing outputs),
2 partial: some records were skipped (each one named on stderr and in
``records.tsv``).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import TYPE_CHECKING

import typer

from virnucpro_app.chunking import DEFAULT_CHUNK_SIZE_BP
from virnucpro_app.cli import app
from virnucpro_app.cli._exit import exit_on_error
from virnucpro_app.cli._options import DebugOption  # noqa: TC001 - typer reads it
from virnucpro_app.errors import AppError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from virnucpro_app.prepare import PreparedBatch, PrepareSummary

#: Skipped records named one by one on stderr; the rest are counted.
MAX_LISTED_SKIPS = 20


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A records / Mbp counter on stderr: ``advance(records, bases)``."""
    if not enabled:
        yield lambda _records, _bases: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("prepare: {task.completed:,} records, {task.fields[mbp]:,.1f} Mbp"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr)) as bar:
        task = bar.add_task("prepare", total=None, mbp=0.0)
        seen = {"bases": 0}

        def advance(records: int, bases: int) -> None:
            seen["bases"] += bases
            bar.update(task, advance=records, mbp=seen["bases"] / 1e6)

        yield advance


def _on_batch(advance: Callable[[int, int], None]) -> Callable[[PreparedBatch], None]:
    listed = {"skips": 0}

    def on_batch(batch: PreparedBatch) -> None:
        for account in batch.accounts:
            if account.reason:
                listed["skips"] += 1
                if listed["skips"] <= MAX_LISTED_SKIPS:
                    typer.echo(f"warning: {account.detail}", err=True)
        advance(len(batch.accounts), batch.num_bp)

    return on_batch


def _report(summary: PrepareSummary) -> None:
    counts = summary.tally.counts
    skipped = summary.tally.num_skipped
    if skipped > MAX_LISTED_SKIPS:
        typer.echo(
            f"warning: {skipped - MAX_LISTED_SKIPS} more records skipped; "
            f"see {summary.layout.records_report_path}",
            err=True,
        )
    typer.echo(
        f"{summary.tally.num_records} records ({summary.num_bp:,} bp): "
        f"{counts['prepared']} prepared, {counts['no_stop_free_frame']} without a "
        f"stop-free frame, {skipped} skipped; {summary.num_chunks} chunks, "
        f"{summary.num_frames} frames -> {summary.layout.output_dir}"
    )


@app.command("prepare")
def prepare(
    *,
    inputs: list[Path] = typer.Argument(
        ...,
        help="FASTA files, plain or gzip-compressed.",
        metavar="INPUT",
        show_default=False,
    ),
    output_dir: Path = typer.Option(
        ..., "--output-dir", "-o", help="Folder for the outputs (created if needed)."
    ),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_SIZE_BP,
        "--chunk-size",
        help="Chunk length in bases (the published models: 300 or 500).",
    ),
    workers: int = typer.Option(
        0, "--workers", help="Processes to use; 0 means every available core."
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite existing outputs of prepare in the folder."
    ),
    no_progress: bool = typer.Option(
        False, "--no-progress", help="No progress counter on stderr."
    ),
    debug: DebugOption = False,
) -> None:
    """Cut contigs into chunks and keep their stop-free frames, as VirNucPro does."""
    with exit_on_error(debug=debug):
        if chunk_size < 1:
            raise AppError(f"--chunk-size must be at least 1, got {chunk_size}")
        if workers < 0:
            raise AppError(f"--workers must be 0 (all cores) or more, got {workers}")
        from virnucpro_app.alphabet import SequenceKind, check_inputs
        from virnucpro_app.fasta import read_records
        from virnucpro_app.layout import RunLayout
        from virnucpro_app.prepare import prepare_records, write_prepared

        check_inputs(inputs, SequenceKind.NUCLEOTIDE)
        # run_prepare's two steps, with a word on each batch as it is written.
        batches = prepare_records(
            read_records(inputs), chunk_size_bp=chunk_size, workers=workers or None
        )
        with _progress(enabled=not no_progress) as advance:
            summary = write_prepared(
                batches,
                RunLayout(output_dir),
                force=force,
                on_batch=_on_batch(advance),
            )
        _report(summary)
    if summary.exit_code:
        raise typer.Exit(code=summary.exit_code)
