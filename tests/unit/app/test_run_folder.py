"""Settling a run folder: a run that never finished preparing never blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from virnucpro_app.config import ExistingRun
from virnucpro_app.errors import PipelineError
from virnucpro_app.layout import RunLayout
from virnucpro_app.predict.launch import ENV_STATUS_DIR, report_rank_status
from virnucpro_app.stages.store import RunFolder, settle_run_folder


def _settle(layout: RunLayout, existing: ExistingRun) -> None:
    folder = RunFolder(
        layout.output_dir,
        layout.run_paths(),
        flag="--output-dir",
        job="run",
        started=layout.has_started(),
    )
    settle_run_folder(folder, existing)


def _failed_start(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path / "out")
    layout.checkpoints_dir.mkdir(parents=True)
    layout.manifest_path.write_bytes(b"manifest")
    layout.chunks_fasta_path.write_text(">a_chunk_1\nACGT\n")
    layout.log_path.write_text("log\n")
    return layout


def test_a_folder_whose_run_never_finished_preparing_is_taken_over(
    tmp_path: Path,
) -> None:
    layout = _failed_start(tmp_path)
    assert not layout.has_started()
    _settle(layout, ExistingRun.REFUSE)
    assert list(layout.output_dir.iterdir()) == []


def test_files_that_are_not_the_runs_still_need_resume_or_force(
    tmp_path: Path,
) -> None:
    layout = _failed_start(tmp_path)
    (layout.output_dir / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="--resume"):
        _settle(layout, ExistingRun.REFUSE)


@pytest.mark.parametrize(
    "name",
    ["prepared.ckpt", "shard-00003.esm.ckpt", "shard-00001.scores.ckpt.quarantined-x"],
)
def test_a_run_that_got_past_preparing_is_kept(tmp_path: Path, name: str) -> None:
    layout = _failed_start(tmp_path)
    (layout.checkpoints_dir / name).write_bytes(b"x")
    assert layout.has_started()
    with pytest.raises(PipelineError, match="not empty"):
        _settle(layout, ExistingRun.REFUSE)
    _settle(layout, ExistingRun.RESUME)
    assert (layout.checkpoints_dir / name).exists()


def test_a_rank_under_the_launcher_leaves_its_code_and_ends_with_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STATUS_DIR, raising=False)
    monkeypatch.setenv("RANK", "1")
    assert report_rank_status(3) == 3  # the user's own torchrun: the run's code
    monkeypatch.setenv(ENV_STATUS_DIR, str(tmp_path))
    assert report_rank_status(2) == 0
    assert (tmp_path / "rank-1").read_text() == "2\n"
    monkeypatch.delenv("RANK")
    assert report_rank_status(2) == 2  # the launcher itself
