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
    """

    inputs: tuple[Path, ...]
    output_dir: Path
    model_type: int
    models: ModelRequest
    options: RunOptions


def launch_predict(request: PredictRequest) -> ExitCode:
    """Resolve everything, run predict, and return its exit code (0 or 2).

    Under torchrun every rank calls this; see ``predict.distributed``.

    Args:
        request: The command line.

    Returns:
        0 when every record was scored, 2 when some were skipped.

    Raises:
        AppError: Bad inputs, models, options or checkpoints (see ``run_predict``).
    """
    import torch

    from virnucpro_app.predict.distributed import (
        ProcessGroup,
        rank_device,
        world_from_env,
    )

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
        return _run(config, group)
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
    )


def _run(config: RunConfig, group: ProcessGroup) -> ExitCode:
    from virnucpro_app.predict.run import run_predict
    from virnucpro_app.stages.manifest import ModelIdentities, build_manifest

    manifest = build_manifest(config, ModelIdentities.of(config.models))
    result = run_predict(config, manifest, group)
    if group.world.is_main:
        LOG.info(
            "results in %s (exit code %d)", config.output_dir, int(result.exit_code)
        )
    return result.exit_code


def relaunch_on_gpus(gpus: str, argv: list[str]) -> int:
    """Run this same predict command under torchrun, one process per GPU.

    Args:
        gpus: Comma-separated GPU numbers (``0,1,2,3``).
        argv: This process's arguments (``predict ... --gpus 0,1``).

    Returns:
        torchrun's exit code.

    Raises:
        PipelineError: ``gpus`` is not a list of numbers.
    """
    import subprocess
    import sys

    from virnucpro_app.errors import PipelineError

    ids = [part.strip() for part in gpus.split(",") if part.strip()]
    if not ids or not all(part.isdigit() for part in ids):
        raise PipelineError(f"--gpus takes GPU numbers like 0,1,2,3, not {gpus!r}")
    args = _without_option(argv, "--gpus")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(ids)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={len(ids)}",
        "-m",
        "virnucpro_app",
        *args,
    ]
    LOG.info("starting %d processes: %s", len(ids), " ".join(command))
    return subprocess.call(command, env=env)  # noqa: S603 - our own interpreter


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
