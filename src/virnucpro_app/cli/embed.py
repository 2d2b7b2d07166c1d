"""``virnucpro-app embed dnabert|esm``: one model over one FASTA, to a checkpoint.

Writes a ckptkit checkpoint (schema ``virnucpro.embeddings``) whose state is
``{"ids": [...], "embeddings": float32 [N, D]}`` in input order, with metadata
naming the model (content hash, dimensions), precision and device.
"""

from __future__ import annotations

import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import TYPE_CHECKING, Any

import typer

from virnucpro_app import __version__
from virnucpro_app.cli import app
from virnucpro_app.cli._options import DebugOption, with_run_options
from virnucpro_app.config import RunOptions  # noqa: TC001 - typer reads it
from virnucpro_app.layout import EMBEDDINGS_SCHEMA
from virnucpro_app.models import EncoderKind

if TYPE_CHECKING:
    from collections.abc import Iterator


def _read_fasta(path: Path) -> tuple[list[str], list[str]]:
    """Record IDs (first word of the header) and sequences; refuses bad input."""
    import dnaio

    from virnucpro_app.errors import InputError

    ids: list[str] = []
    sequences: list[str] = []
    seen: set[str] = set()
    try:
        with dnaio.open(path, fileformat="fasta") as reader:
            for number, record in enumerate(reader, start=1):
                record_id = (record.name.split() or [""])[0]
                if not record_id:
                    raise InputError(f"{path}: record {number} has an empty header")
                if record_id in seen:
                    raise InputError(
                        f"{path}: duplicate record ID {record_id!r} (record {number}); "
                        "IDs must be unique"
                    )
                if not record.sequence:
                    raise InputError(
                        f"{path}: record {record_id!r} has an empty sequence"
                    )
                seen.add(record_id)
                ids.append(record_id)
                sequences.append(record.sequence)
    except dnaio.exceptions.FileFormatError as error:
        raise InputError(f"{path}: not FASTA ({error})") from error
    if not ids:
        raise InputError(f"{path}: no FASTA records")
    return ids, sequences


def _check_kind(kind: EncoderKind, path: Path) -> None:
    """Refuse protein for DNABERT-S and nucleotides for ESM-2 (one line, exit 1)."""
    from virnucpro_app.alphabet import SequenceKind, check_kind

    if kind is EncoderKind.DNABERT:
        check_kind(
            path,
            SequenceKind.NUCLEOTIDE,
            advice="`embed dnabert` takes nucleotide sequences; for proteins use "
            "`virnucpro-app embed esm`",
        )
    else:
        check_kind(
            path,
            SequenceKind.PROTEIN,
            advice="`embed esm` takes protein sequences; for nucleotide sequences "
            "use `virnucpro-app embed dnabert`, or `virnucpro-app prepare` to "
            "translate contigs into the proteins of their stop-free frames",
        )


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show warnings (demo models, out-of-memory back-off) as one line each."""

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        typer.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def _metadata(encoder: Any, input_path: Path, num: int, budget: int) -> dict[str, Any]:
    from virnucpro_app.identity import file_identity

    info = encoder.info
    return {
        "model": info.to_metadata(),
        "precision": info.precision,
        "device": info.device,
        "embedding_dim": info.embedding_dim,
        "num_sequences": num,
        "tokens_per_batch": budget,
        "input": {"path": str(input_path), "identity": file_identity(input_path)},
        "virnucpro_app_version": __version__,
        "demo": info.demo,
    }


@app.command("embed")
@with_run_options("device", "precision", "tokens_per_batch", "no_progress")
def embed(
    *,
    kind: EncoderKind = typer.Argument(..., help="Which model: dnabert or esm."),
    model: str = typer.Option(
        ...,
        "--model",
        help=(
            "DNABERT-S folder, or ESM-2 fair-esm .pt file (or a name such as "
            "esm2_t36_3B_UR50D, looked up in the torch hub cache)."
        ),
    ),
    input_path: Path = typer.Option(..., "--input", help="FASTA file to embed."),
    output: Path = typer.Option(..., "--output", help="Checkpoint file to write."),
    debug: DebugOption = False,
    options: RunOptions,
) -> None:
    """Embed the sequences of a FASTA file with DNABERT-S or ESM-2."""
    # ckptkit (through the error mapping) imports torch: only once the command runs.
    from virnucpro_app.cli._exit import exit_on_error

    with exit_on_error(debug=debug), _warnings_to_stderr():
        import ckptkit
        from virnucpro_app.models import load_encoder
        from virnucpro_app.progress import throughput_progress

        ids, sequences = _read_fasta(input_path)
        _check_kind(kind, input_path)
        encoder = load_encoder(
            kind, model, device=options.device, precision=options.precision
        )
        info = encoder.info
        typer.echo(
            f"{info.architecture}: {info.num_layers} layers x {info.hidden_size} on "
            f"{info.device} ({info.precision}, attention {info.attention})",
            err=True,
        )
        budget = options.tokens_per_batch or encoder.default_tokens_per_batch
        started = time.perf_counter()
        with throughput_progress(
            f"embed {kind.value}", len(ids), enabled=options.progress
        ) as advance:
            embeddings = encoder.embed(
                ids, sequences, tokens_per_batch=budget, progress=advance
            )
        elapsed = time.perf_counter() - started
        ckptkit.save(
            output,
            {"ids": ids, "embeddings": embeddings},
            schema=EMBEDDINGS_SCHEMA,
            metadata=_metadata(encoder, input_path, len(ids), budget),
        )
        typer.echo(
            f"wrote {len(ids)} x {info.embedding_dim} embeddings to {output} "
            f"in {elapsed:.1f} s",
            err=True,
        )
        if info.demo:
            banner = (
                "NOTE: demo model, random weights: these embeddings are NOT BIOLOGY"
            )
            print(banner, file=sys.stderr)  # noqa: T201 - must stand out on stderr
