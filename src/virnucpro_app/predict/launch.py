"""From a command line's request to a running predict job.

Resolves the models (paths, environment variables or the demo models), the
device and precision, the run manifest (content hashes of inputs and models),
then hands over to :func:`virnucpro_app.predict.run.run_predict`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from virnucpro_app.config import RunConfig
from virnucpro_app.layout import RunLayout
from virnucpro_app.records import DEFAULT_RECORD_THRESHOLD

if TYPE_CHECKING:
    from pathlib import Path

    from ckptkit.types import ExitCode
    from virnucpro_app.config import ModelRequest, RunOptions
    from virnucpro_app.predict.distributed import ProcessGroup

LOG = logging.getLogger("virnucpro_app")


@dataclass(frozen=True)
class PredictRequest:
    """The command line of ``predict``, before anything is resolved.

    Attributes:
        inputs: FASTA files (none with ``--demo``: the bundled sample).
        output_dir: Folder for results and checkpoints.
        model_type: Chunk size in bp (300 or 500).
        models: The models named on the command line.
        options: The shared run options (device and precision as asked).
        record_threshold: ``--record-threshold`` of the per-record verdict.
        adopt_dir: ``--adopt``: legacy feature files to take features from.
    """

    inputs: tuple[Path, ...]
    output_dir: Path
    model_type: int
    models: ModelRequest
    options: RunOptions
    record_threshold: float = DEFAULT_RECORD_THRESHOLD
    adopt_dir: Path | None = None


def launch_predict(request: PredictRequest) -> ExitCode:
    """Resolve everything, run predict, and return its exit code (0 or 2).

    Under torchrun every rank calls this; see ``predict.distributed``.

    Returns:
        0 when every record was scored, 2 when some were skipped (the same on
        every rank).

    Raises:
        AppError: Bad inputs, models, options or checkpoints (see ``run_predict``).
    """
    import torch

    from virnucpro_app.predict.distributed import (
        ProcessGroup,
        rank_device,
        world_from_env,
    )
    from virnucpro_app.predict.run import run_predict

    world = world_from_env()
    device = rank_device(
        request.options.device, world, cuda_available=torch.cuda.is_available()
    )
    group = ProcessGroup(world, use_cuda=device.startswith("cuda"))
    try:
        if world.is_distributed and device == "cpu":
            # Share the cores of this machine among its ranks.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.local_size))
        if request.models.demo_dir is not None and world.is_main:
            request.models.resolve(request.model_type)  # builds the demo models
        group.barrier()  # other ranks read the demo models once rank 0 built them
        config = _resolve(request, group, device)
        return run_predict(config, group).exit_code
    finally:
        group.close()


def _resolve(request: PredictRequest, group: ProcessGroup, device: str) -> RunConfig:
    """The run's config: models located, device and precision resolved."""
    from virnucpro_app.demo import bundled_sample

    world = group.world
    models = request.models.resolve(request.model_type)
    inputs = request.inputs
    if not inputs and request.models.demo_dir is not None:
        inputs = (bundled_sample(),)
    options = replace(
        request.options,
        device=device,
        progress=request.options.progress and world.is_main,
    )
    rank = f"rank {world.rank}: " if world.is_distributed else ""
    return RunConfig(
        inputs=inputs,
        output_dir=request.output_dir,
        model_type=request.model_type,
        models=models,
        options=options.resolve_device(log_prefix=rank),
        adopt_dir=request.adopt_dir,
        record_threshold=request.record_threshold,
    )


#: Set by :func:`relaunch_on_gpus` for its ranks: a folder where each rank
#: leaves its exit code (``rank-N``) and then exits 0, so that the launcher, not
#: torch's elastic agent, decides what the job's code is.
ENV_STATUS_DIR = "VIRNUCPRO_RANK_STATUS_DIR"


def report_rank_status(code: int) -> int:
    """The exit code this process should end with.

    Under :func:`relaunch_on_gpus` the run's code is left in the status folder
    and the process ends with 0 (torch's agent treats any other code as a
    crash); elsewhere (one process, or the user's own torchrun) it is the
    run's code itself.
    """
    folder = os.environ.get(ENV_STATUS_DIR)
    rank = os.environ.get("RANK")
    if not folder or rank is None:
        return code
    from pathlib import Path

    Path(folder, f"rank-{rank}").write_text(f"{code}\n", encoding="ascii")
    return 0


def relaunch_on_gpus(gpus: str, argv: list[str], output_dir: Path) -> int:
    """Run this same predict command on one process per GPU and return its code.

    The ranks are started by torch's elastic launcher (what torchrun runs,
    ``--standalone``). Each rank reports the run's code (0, 1, 2 or 3, the same
    on every rank) through :data:`ENV_STATUS_DIR`; a rank that crashes
    (killed, out of memory, an unexpected error) stops the others and makes
    this return 1 with one line naming it and its log.

    Args:
        gpus: Comma-separated GPU numbers (``0,1,2,3``).
        argv: This process's arguments (``predict ... --gpus 0,1``).
        output_dir: The run's folder (where the rank logs are).

    Returns:
        The run's exit code, as one process would end.

    Raises:
        PipelineError: ``gpus`` is not a list of numbers, or a rank crashed.
    """
    import sys
    import tempfile
    import uuid

    from virnucpro_app.errors import PipelineError

    ids = [part.strip() for part in gpus.split(",") if part.strip()]
    if not ids or not all(part.isdigit() for part in ids):
        raise PipelineError(f"--gpus takes GPU numbers like 0,1,2,3, not {gpus!r}")
    args = ["-u", "-m", "virnucpro_app", *_without_option(argv, "--gpus")]
    with tempfile.TemporaryDirectory(prefix="virnucpro-ranks-") as status_dir:
        # The ranks inherit this environment.
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        os.environ[ENV_STATUS_DIR] = status_dir
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: ranks share cores
        LOG.info(
            "starting %d processes: %s %s", len(ids), sys.executable, " ".join(args)
        )
        crashed = _launch(len(ids), args, str(uuid.uuid4()))
        if crashed is not None:
            rank, what = crashed
            log = RunLayout(output_dir).rank_log_path(rank)
            raise PipelineError(
                f"rank {rank} crashed ({what}); its log is {log}. The other ranks "
                "were stopped; continue with --resume"
            )
        return _read_codes(status_dir, len(ids), output_dir)


def _launch(nproc: int, args: list[str], run_id: str) -> tuple[int, str] | None:
    """Start the ranks and wait: None when all ended, else (rank, how it died)."""
    import sys

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=run_id,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
    )
    try:
        elastic_launch(config, sys.executable)(*args)
    except SignalException as error:  # Ctrl-C or a kill: the agent stopped the ranks
        raise KeyboardInterrupt from error
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        signal = failure.signal_name() if failure.exitcode < 0 else ""
        what = f"killed by {signal}" if signal else f"exit code {failure.exitcode}"
        return rank, what
    return None


def _read_codes(status_dir: str, nproc: int, output_dir: Path) -> int:
    from pathlib import Path

    from virnucpro_app.errors import PipelineError

    codes = []
    for rank in range(nproc):
        path = Path(status_dir, f"rank-{rank}")
        if not path.exists():  # pragma: no cover - a rank that ends reports
            log = RunLayout(output_dir).rank_log_path(rank)
            raise PipelineError(f"rank {rank} ended without a result; its log is {log}")
        codes.append(int(path.read_text(encoding="ascii")))
    return codes[0]


def _without_option(argv: list[str], name: str) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(f"{name}="):
            kept.append(arg)
    return kept
