"""The options the commands share, each declared once, and what they build.

A group of flags is declared once as a table of parameters and added to a
command by a decorator made with :func:`gather`, which hands the command one
frozen object built from them instead of the loose values:

- :func:`with_run_options`: device, precision, batching, shards, resume/force,
  validation, progress and log flags -> ``options: RunOptions`` (the
  ``--resume``/``--force`` check included);
- :func:`with_models`: ``--dnabert``, ``--esm``, ``--classifier``, ``--demo`` ->
  ``models: ModelRequest``.

Single flags (``--model-type``, ``--debug``) are ``Annotated`` types a command
names as its parameters' types. Also the logging setup and the demo cache
folder of the long-running commands. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from virnucpro_app.config import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_SLICE_SIZE,
    ENV_CLASSIFIER,
    ENV_DEMO_CACHE,
    ENV_DNABERT,
    ENV_ESM,
    ExistingRun,
    ModelRequest,
    RunOptions,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Help panels of ``--help``.
MODELS = "Models"
COMPUTE = "Compute"
RUN = "Run control"

ModelTypeOption = Annotated[
    int,
    typer.Option(
        "--model-type",
        help="Chunk size in bp, 300 or 500 (recorded in the classifier; predict's "
        "must match it).",
        rich_help_panel=MODELS,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def flag(
    name: str,
    annotation: object,
    default: object,
    text: str,
    *names: str,
    panel: str | None = None,
    **extra: Any,
) -> inspect.Parameter:
    """A command parameter ``name: annotation = typer.Option(default, ...)``.

    Args:
        name: The parameter; its flag is ``--kebab-case`` of it.
        annotation: Its type, as an object (typer reads it).
        default: The default value.
        text: The ``--help`` text.
        *names: Short names besides the ``--kebab-case`` one (``-q``).
        panel: The ``--help`` panel.
        **extra: More ``typer.Option`` arguments (``min``, ``envvar``, ...).

    Returns:
        The keyword-only parameter, for a table of flags given to :func:`gather`.
    """
    option = typer.Option(
        default,
        f"--{name.replace('_', '-')}",
        *names,
        help=text,
        rich_help_panel=panel,
        **extra,
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


def _table(*flags: inspect.Parameter) -> dict[str, inspect.Parameter]:
    return {item.name: item for item in flags}


_PRECISION_HELP = (
    "Language models: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16."
)
_BUDGET_HELP = (
    "Padded tokens per language-model batch (default depends on the model and device)."
)
_SLICE_HELP = "Frames embedded between two in-progress checkpoints of a shard."
_FORCE_RESUME_HELP = (
    "On resume, set damaged checkpoints aside (kept, renamed) and recompute their work."
)
#: Every run option's flag, by parameter name, in ``--help`` order.
RUN_FLAGS = _table(
    flag("device", str, "auto", "auto, cpu, cuda or cuda:N.", panel=COMPUTE),
    flag("precision", str, "auto", _PRECISION_HELP, panel=COMPUTE),
    flag("tokens_per_batch", int | None, None, _BUDGET_HELP, panel=COMPUTE, min=1),
    flag(
        "shard_size",
        int,
        DEFAULT_SHARD_SIZE,
        "Frames per work unit (checkpointed as a whole).",
        panel=COMPUTE,
        min=1,
    ),
    flag("slice_size", int, DEFAULT_SLICE_SIZE, _SLICE_HELP, hidden=True, min=1),
    flag(
        "resume",
        bool,
        False,
        "Continue the run in its folder (starts one if none).",
        panel=RUN,
    ),
    flag(
        "force",
        bool,
        False,
        "Delete the run's files (and train's --output) and start over.",
        panel=RUN,
    ),
    flag(
        "skip_checkpoint_validation",
        bool,
        False,
        "On resume, check checkpoint headers only (no checksums).",
        panel=RUN,
    ),
    flag("force_resume", bool, False, _FORCE_RESUME_HELP, panel=RUN),
    flag(
        "keep_intermediate",
        bool,
        False,
        "Keep the chunk and frame FASTA files (chunks.fa, orfs.*).",
        panel=RUN,
    ),
    flag("no_progress", bool, False, "No progress bars.", panel=RUN),
    flag("quiet", bool, False, "Warnings and errors only.", "-q", panel=RUN),
    flag("verbose", bool, False, "Debug log and tracebacks.", "-v", panel=RUN),
    flag("log_file", Path | None, None, "Also write the log here.", panel=RUN),
)
#: The run options of the jobs that checkpoint a run folder (predict, train).
JOB_FLAGS = tuple(RUN_FLAGS)


def build_run_options(flags: dict[str, Any]) -> RunOptions:
    """The :class:`RunOptions` of the given flag values (absent ones: defaults).

    Raises:
        PipelineError: ``--resume`` with ``--force``.
    """
    values = dict(flags)
    existing = ExistingRun.from_flags(
        resume=values.pop("resume", False), force=values.pop("force", False)
    )
    no_progress = values.pop("no_progress", False)
    return RunOptions(
        **values,
        existing=existing,
        progress=not no_progress and not values.get("quiet", False),
    )


def gather(
    parameter: str,
    flags: Sequence[inspect.Parameter],
    build: Callable[[dict[str, Any]], object],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator giving a command ``flags`` and one ``parameter`` built from them.

    The command declares a keyword parameter named ``parameter``; the flags take
    its place in the signature typer reads, and the wrapper calls ``build`` with
    their values (inside the error mapping, so a bad combination is one line and
    exit 1; tracebacks with ``--verbose`` when the run options are built first).

    Args:
        parameter: The command's parameter that receives the built object.
        flags: The flags, in ``--help`` order (see :func:`flag`).
        build: Turns ``{flag name: value}`` into the object.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != parameter]
        parameters = [*own, *flags]

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            from virnucpro_app.cli._exit import exit_on_error

            given = {item.name: values.pop(item.name) for item in flags}
            options = values.get("options")
            debug = bool(given.get("verbose")) or (
                isinstance(options, RunOptions) and options.verbose
            )
            with exit_on_error(debug=debug):
                values[parameter] = build(given)
            command(**values)

        # typer reads the signature and the annotations: the flags replace
        # ``parameter`` in both.
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def with_run_options(
    *names: str,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the run flags ``names`` and one ``options: RunOptions``.

    Apply it above the command's other :func:`gather` decorators, so that they
    see ``--verbose``.

    Args:
        names: Keys of :data:`RUN_FLAGS`, in ``--help`` order.
    """
    return gather("options", [RUN_FLAGS[name] for name in names], build_run_options)


def demo_cache_dir() -> Path:
    """Where ``--demo`` keeps its models (``$VIRNUCPRO_DEMO_CACHE`` or ~/.cache)."""
    configured = os.environ.get(ENV_DEMO_CACHE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "virnucpro-app" / "demo-models"


_DEMO_HELP = (
    f"Use small random-weight demo models (built on first use in ${ENV_DEMO_CACHE} "
    "or ~/.cache/virnucpro-app). Their outputs are NOT biology; models named "
    "explicitly still win."
)
#: The model flags, by parameter name, in ``--help`` order.
MODEL_FLAGS = _table(
    flag(
        "dnabert",
        str | None,
        None,
        "DNABERT-S folder (config.json, weights, tokenizer.json).",
        panel=MODELS,
        envvar=ENV_DNABERT,
    ),
    flag(
        "esm",
        str | None,
        None,
        "ESM-2 fair-esm .pt file, or a name (esm2_t36_3B_UR50D) looked up in the "
        "torch hub cache.",
        panel=MODELS,
        envvar=ENV_ESM,
    ),
    flag(
        "classifier",
        str | None,
        None,
        "Classifier checkpoint (convert published .pth files with "
        "`virnucpro-app models import-classifier`).",
        panel=MODELS,
        envvar=ENV_CLASSIFIER,
    ),
    flag("demo", bool, False, _DEMO_HELP, panel=MODELS),
)


def _model_request(flags: dict[str, Any]) -> ModelRequest:
    return ModelRequest(
        dnabert=flags["dnabert"],
        esm=flags["esm"],
        classifier=flags.get("classifier"),
        demo_dir=demo_cache_dir() if flags["demo"] else None,
    )


def with_models(
    *, classifier: bool
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the model flags and one ``models: ModelRequest``.

    Args:
        classifier: Whether the command takes ``--classifier`` (``train`` makes
            one instead).
    """
    flags = [f for name, f in MODEL_FLAGS.items() if classifier or name != "classifier"]
    return gather("models", flags, _model_request)


def _log_warning(message: Warning | str, *_details: object, **_named: object) -> None:
    """``warnings.showwarning`` as one log line (category, file and line dropped)."""
    logging.getLogger("virnucpro_app").warning("%s", message)


def setup_logging(options: RunOptions) -> None:
    """Log to stderr (and ``--log-file``) at the level of ``--quiet``/``--verbose``.

    The run's own log files get every record at DEBUG level whatever this level
    (:mod:`virnucpro_app.runlog`); until the job attaches them, records are held.
    """
    from virnucpro_app import runlog

    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if options.log_file is not None:
        options.log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(options.log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setLevel(options.log_level)
    # Demo-model and out-of-memory warnings: one log line each, no source dump.
    warnings.showwarning = _log_warning
    logging.basicConfig(
        level=options.log_level,
        format=runlog.FORMAT,
        handlers=handlers,
        force=True,
    )
    runlog.start()
