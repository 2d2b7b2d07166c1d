"""train's checkpoint folder rules: refuse, resume or start over; checked config."""

from __future__ import annotations

from pathlib import Path

import pytest

from virnucpro_app.config import ExistingRun, ModelPaths, RunOptions
from virnucpro_app.errors import InputError, PipelineError
from virnucpro_app.layout import TrainLayout
from virnucpro_app.stages.manifest import ModelIdentities
from virnucpro_app.training.recipe import TrainRecipe
from virnucpro_app.training.run import TrainConfig, settle_checkpoint_dir


def _config(
    tmp_path: Path,
    existing: ExistingRun = ExistingRun.REFUSE,
    *,
    model_type: int = 300,
    output: Path | None = None,
) -> TrainConfig:
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGT\n")
    output = output or tmp_path / "model.ckpt"
    options = RunOptions(
        device="cpu",
        precision="fp32",
        shard_size=10,
        slice_size=5,
        existing=existing,
        progress=False,
    )
    return TrainConfig(
        virus=(fasta,),
        host=(fasta,),
        output=output,
        layout=TrainLayout.default_for(output),
        recipe=TrainRecipe(),
        model_type=model_type,
        models=ModelPaths(dnabert="d", esm="e", classifier=""),
        options=options,
        identities=ModelIdentities(dnabert="x", esm="y"),
    )


def _fill(layout: TrainLayout) -> Path:
    (layout.train_dir).mkdir(parents=True)
    (layout.train_dir / "step-000000000001.ckpt").write_text("x")
    layout.features("virus").checkpoints_dir.mkdir(parents=True)
    layout.summary_path.write_text("{}")
    other = layout.checkpoint_dir / "notes.txt"
    other.write_text("mine")
    return other


def test_a_used_folder_is_refused_without_resume_or_force(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _fill(config.layout)
    with pytest.raises(PipelineError, match=r"--resume.*--force"):
        settle_checkpoint_dir(config)


def test_an_existing_output_is_refused_without_resume_or_force(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.output.write_text("old classifier")
    with pytest.raises(PipelineError, match="--force"):
        settle_checkpoint_dir(config)


def test_force_deletes_the_run_and_the_output_only(tmp_path: Path) -> None:
    config = _config(tmp_path, ExistingRun.FORCE)
    other = _fill(config.layout)
    config.output.write_text("old classifier")
    settle_checkpoint_dir(config)
    assert sorted(p.name for p in config.layout.checkpoint_dir.iterdir()) == [
        "notes.txt"
    ]
    assert other.read_text() == "mine"
    assert not config.output.exists()


def test_resume_keeps_everything(tmp_path: Path) -> None:
    config = _config(tmp_path, ExistingRun.RESUME)
    _fill(config.layout)
    config.output.write_text("old classifier")
    settle_checkpoint_dir(config)
    assert (config.layout.train_dir / "step-000000000001.ckpt").exists()
    assert config.output.exists()


def test_config_refuses_bad_model_type_missing_input_and_clashing_paths(
    tmp_path: Path,
) -> None:
    with pytest.raises(PipelineError, match="300 or 500"):
        _config(tmp_path, model_type=400)
    config = _config(tmp_path)
    with pytest.raises(InputError, match="--host"):
        TrainConfig(
            virus=config.virus,
            host=(tmp_path / "missing.fa",),
            output=config.output,
            layout=config.layout,
            recipe=config.recipe,
            model_type=config.model_type,
            models=config.models,
            options=config.options,
            identities=config.identities,
        )
    with pytest.raises(PipelineError, match="is the checkpoint folder"):
        _config(tmp_path, output=tmp_path / "model.training")
