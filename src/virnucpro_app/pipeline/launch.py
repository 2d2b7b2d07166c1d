"""From command-line values to a running predict job.

Resolves the models (paths, environment variables or the demo models), the
device and precision, the run manifest (content hashes of inputs and models),
then hands over to :func:`virnucpro_app.pipeline.run.run_predict`.
"""

from __future__ import annotations

import logging
import os
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virnucpro_app.config import (
    ENV_CLASSIFIER,
    ENV_DNABERT,
    ENV_ESM,
    ExistingRun,
    ModelPaths,
    PredictConfig,
)
from virnucpro_app.errors import ModelLoadError
from virnucpro_app.identity import file_identity, files_identity
from virnucpro_app.pipeline.manifest import RunManifest

if TYPE_CHECKING:
    from ckptkit.types import ExitCode
    from virnucpro_app.device import DevicePlan
    from virnucpro_app.pipeline.distributed import ProcessGroup

LOG = logging.getLogger("virnucpro_app")
SAMPLE_FASTA = "sample.fasta"


def bundled_sample() -> Path:
    """The sample FASTA shipped with the package (coding-rich demo contigs)."""
    resource = files("virnucpro_app") / "data" / SAMPLE_FASTA
    with as_file(resource) as path:
        return Path(path)


def demo_models(cache_dir: Path, model_type: int) -> ModelPaths:
    """The demo models, built in ``cache_dir`` on first use."""
    from virnucpro_app.demo import make_demo_models

    marker = cache_dir / ".complete"
    if not marker.exists():
        LOG.info("building demo models in %s (random weights: NOT biology)", cache_dir)
        make_demo_models(cache_dir)
        marker.write_text("demo models complete\n")
    from virnucpro_app.demo import (
        DEMO_CLASSIFIER_NAME,
        DNABERT_DEMO_DIR,
        ESM_DEMO_NAME,
    )

    return ModelPaths(
        dnabert=str(cache_dir / DNABERT_DEMO_DIR),
        esm=str(cache_dir / ESM_DEMO_NAME),
        classifier=str(cache_dir / DEMO_CLASSIFIER_NAME.format(size=model_type)),
        demo=True,
    )


def given_models(
    dnabert: str | None, esm: str | None, classifier: str | None
) -> ModelPaths:
    """The three models named by flags or environment variables.

    Raises:
        ModelLoadError: One is missing, naming its flag and variable.
    """
    missing = [
        f"{flag} (or ${env})"
        for value, flag, env in (
            (dnabert, "--dnabert", ENV_DNABERT),
            (esm, "--esm", ENV_ESM),
            (classifier, "--classifier", ENV_CLASSIFIER),
        )
        if not value
    ]
    if missing:
        raise ModelLoadError(
            "no model given for " + ", ".join(missing) + "; pass them, or --demo to "
            "try the pipeline with random-weight demo models"
        )
    return ModelPaths(dnabert=str(dnabert), esm=str(esm), classifier=str(classifier))


def dnabert_identity(folder: str) -> str:
    """Content identity of a DNABERT-S folder, as the encoder computes it."""
    from virnucpro_app.models.dnabert_files import (
        CONFIG_FILE,
        TOKENIZER_FILE,
        WEIGHT_FILES,
    )

    root = Path(folder)
    weights = next((n for n in WEIGHT_FILES if (root / n).is_file()), None)
    if weights is None or not (root / CONFIG_FILE).is_file():
        raise ModelLoadError(
            f"{root}: not a DNABERT-S folder (needs {CONFIG_FILE}, "
            f"{' or '.join(WEIGHT_FILES)} and {TOKENIZER_FILE})"
        )
    return files_identity(root, [CONFIG_FILE, weights, TOKENIZER_FILE])


def esm_identity(model: str) -> str:
    """Content identity of an ESM-2 file (a name is looked up in the hub cache)."""
    from virnucpro_app.models.esm2_files import resolve_esm2_path

    return file_identity(resolve_esm2_path(model))


def build_manifest(config: PredictConfig, precision: str) -> RunManifest:
    """Hash inputs and models into the run's manifest."""
    return RunManifest(
        inputs=tuple((path.name, file_identity(path)) for path in config.inputs),
        dnabert=dnabert_identity(config.models.dnabert),
        esm=esm_identity(config.models.esm),
        classifier=file_identity(config.models.classifier),
        chunk_size=config.model_type,
        precision=precision,
        shard_size=config.shard_size,
    )


def launch_predict(  # noqa: PLR0913 - the command line's values
    *,
    inputs: list[Path],
    output_dir: Path,
    model_type: int,
    dnabert: str | None,
    esm: str | None,
    classifier: str | None,
    demo_dir: Path | None,
    device: str,
    precision: str,
    tokens_per_batch: int | None,
    shard_size: int,
    slice_size: int,
    existing: str,
    skip_checkpoint_validation: bool,
    force_resume: bool,
    keep_intermediate: bool,
    progress: bool,
) -> ExitCode:
    """Resolve everything, run predict, and return its exit code (0 or 2).

    Under torchrun every rank calls this; see ``pipeline.distributed``.
    """
    import torch

    from virnucpro_app.device import plan_device
    from virnucpro_app.pipeline.distributed import (
        ProcessGroup,
        rank_device,
        world_from_env,
    )
    from virnucpro_app.pipeline.run import run_predict

    world = world_from_env()
    device = rank_device(device, world, cuda_available=torch.cuda.is_available())
    group = ProcessGroup(world, use_cuda=device.startswith("cuda"))
    try:
        if world.is_distributed and device == "cpu":
            # Share the cores of this machine among its ranks.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.local_size))
        if demo_dir is not None:
            if world.is_main:
                demo_models(demo_dir, model_type)
            group.barrier()  # other ranks read the demo models once rank 0 built them
            # Models named explicitly still win over the demo ones.
            demo = demo_models(demo_dir, model_type)
            models = ModelPaths(
                dnabert=dnabert or demo.dnabert,
                esm=esm or demo.esm,
                classifier=classifier or demo.classifier,
                demo=True,
            )
            if not inputs:
                inputs = [bundled_sample()]
        else:
            models = given_models(dnabert, esm, classifier)
        return _run(
            run_predict,
            group,
            inputs=inputs,
            output_dir=output_dir,
            model_type=model_type,
            models=models,
            plan=plan_device(device, precision),
            tokens_per_batch=tokens_per_batch,
            shard_size=shard_size,
            slice_size=slice_size,
            existing=existing,
            skip_checkpoint_validation=skip_checkpoint_validation,
            force_resume=force_resume,
            keep_intermediate=keep_intermediate,
            progress=progress and world.is_main,
        )
    finally:
        group.close()


def _run(  # noqa: PLR0913 - the resolved command line
    run_predict: Any,
    group: ProcessGroup,
    *,
    inputs: list[Path],
    output_dir: Path,
    model_type: int,
    models: ModelPaths,
    plan: DevicePlan,
    tokens_per_batch: int | None,
    shard_size: int,
    slice_size: int,
    existing: str,
    skip_checkpoint_validation: bool,
    force_resume: bool,
    keep_intermediate: bool,
    progress: bool,
) -> ExitCode:
    rank = f"rank {group.world.rank}: " if group.world.is_distributed else ""
    LOG.info(
        "%sdevice %s, precision %s%s",
        rank,
        plan.device,
        plan.precision.value,
        f" ({plan.note})" if plan.note else "",
    )
    config = PredictConfig(
        inputs=tuple(inputs),
        output_dir=output_dir,
        model_type=model_type,
        models=models,
        device=plan.device,
        precision=plan.precision.value,
        tokens_per_batch=tokens_per_batch,
        shard_size=shard_size,
        existing=ExistingRun(existing),
        skip_checkpoint_validation=skip_checkpoint_validation,
        force_resume=force_resume,
        keep_intermediate=keep_intermediate,
        progress=progress,
        slice_size=slice_size,
    )
    result = run_predict(config, build_manifest(config, plan.precision.value), group)
    if group.world.is_main:
        LOG.info("results in %s (exit code %d)", output_dir, int(result.exit_code))
    exit_code: ExitCode = result.exit_code
    return exit_code


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
