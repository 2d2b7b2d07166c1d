"""Every command and code block of docs/app/usage.md is run by a test.

This file runs, as written (plus ``--no-progress``), the blocks that no other test
runs, in folders holding the files they name, made from the demo models; and it
checks that each block of the page is claimed by a test that exists.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from random import Random

import pytest

import ckptkit
from virnucpro_app.demo import DEMO_CLASSIFIER_NAME, DNABERT_DEMO_DIR, ESM_DEMO_NAME
from virnucpro_app.models.classifier import load_classifier

from ..support.subprocess_runner import run_cli
from .predict_support import (
    coding_contig,
    demo_env,
    make_input,
    read_predictions,
    read_summary,
    write_fasta,
)

TESTS = Path(__file__).resolve().parents[1]
USAGE = TESTS.parent / "docs" / "app" / "usage.md"
_HERE = "e2e/test_usage_docs.py"
_PREPARE_DOCS = "integration/test_prepare_docs.py"
_PREPARE_EXAMPLE = (
    f"{_PREPARE_DOCS}::test_documented_prepare_example_produces_the_documented_files"
)
#: Every code block of the page, as (section, language, n-th block of that
#: language in the section) -> the test that runs it ("file::function").
RUN_BY = {
    ("predict", "bash", 0): f"{_HERE}::test_predict_commands_run_as_written",
    ("train", "bash", 0): (
        "e2e/test_train.py::test_usage_commands_train_a_classifier_that_predict_uses"
    ),
    ("validate-checkpoints", "bash", 0): (
        f"{_HERE}::test_validate_checkpoints_commands_run_as_written"
    ),
    ("models import-classifier", "bash", 0): (
        f"{_HERE}::test_import_classifier_command_converts_an_original_pickle"
    ),
    ("embed", "bash", 0): "integration/test_embed_cli.py::workdir",
    ("embed", "bash", 1): f"{_HERE}::test_embed_commands_with_named_models_run",
    ("embed", "python", 0): f"{_HERE}::test_embed_commands_with_named_models_run",
    ("prepare", "bash", 0): f"{_HERE}::test_prepare_command_runs_as_written",
    ("prepare", "fasta", 0): _PREPARE_EXAMPLE,
    ("prepare", "bash", 1): _PREPARE_EXAMPLE,
    **{("prepare", "text", n): _PREPARE_EXAMPLE for n in range(5)},
    ("prepare", "python", 0): (f"{_PREPARE_DOCS}::test_documented_python_example_runs"),
}


def _sections() -> dict[str, str]:
    parts = re.split(
        r"^## (.+)$", USAGE.read_text(encoding="utf-8"), flags=re.MULTILINE
    )
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _sections()[section], re.DOTALL)


def _commands(section: str, number: int = 0) -> list[list[str]]:
    """The shell commands of a ``bash`` block (continued lines joined)."""
    text = _blocks(section, "bash")[number].replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in text.splitlines()]
    return [line for line in lines if line]


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    assert command[0] == "virnucpro-app"
    quiet = ["--no-progress"] if command[1] in ("predict", "embed", "prepare") else []
    result = run_cli("virnucpro_app", [*command[1:], *quiet], cwd=cwd, env=env)
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout


def _inputs(folder: Path) -> None:
    """``contigs.fa`` and ``more-contigs.fa.gz``, coding-rich contigs."""
    make_input(folder / "contigs.fa", seed=3, count=2)
    more = write_fasta(folder / "more.fa", [("more1", coding_contig(Random(4), 900))])
    (folder / "more-contigs.fa.gz").write_bytes(gzip.compress(more.read_bytes()))
    more.unlink()


def test_every_block_of_the_page_is_run_by_a_test() -> None:
    blocks = set()
    for section, text in _sections().items():
        languages = re.findall(r"^```(\w*)\n.*?^```$", text, re.DOTALL | re.MULTILINE)
        for language in set(languages):
            blocks.update(
                (section, language, n) for n in range(languages.count(language))
            )
    assert blocks == set(RUN_BY)
    for test in set(RUN_BY.values()):
        path, name = test.split("::")
        assert re.search(rf"def {name}\(", (TESTS / path).read_text()), test


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> Path:
    """The ``## predict`` commands, run with demo models under the names shown."""
    folder = tmp_path_factory.mktemp("usage-predict")
    _inputs(folder)
    shutil.copytree(demo_cache / DNABERT_DEMO_DIR, folder / "DNABERT-S")
    shutil.copy(demo_cache / ESM_DEMO_NAME, folder / "esm2_t36_3B_UR50D.pt")
    shutil.copy(
        demo_cache / DEMO_CLASSIFIER_NAME.format(size=500), folder / "500bp.ckpt"
    )
    commands = _commands("predict")
    assert [c[:2] for c in commands] == [["virnucpro-app", "predict"]] * 2
    for command in commands:
        _run(command, folder, env=demo_env(demo_cache))
    return folder


def test_predict_commands_run_as_written(predicted: Path) -> None:
    summary = read_summary(predicted / "predictions")
    inputs = [Path(str(name)).name for name in summary["inputs"]]  # type: ignore[attr-defined]
    assert inputs == ["contigs.fa", "more-contigs.fa.gz"]
    assert (summary["model_type"], summary["demo_models"]) == (500, False)
    assert read_predictions(predicted / "predictions")
    assert read_summary(predicted / "demo-output")["demo_models"] is True


def test_validate_checkpoints_commands_run_as_written(predicted: Path) -> None:
    full, quick = _commands("validate-checkpoints")
    assert full[:2] == ["virnucpro-app", "validate-checkpoints"]
    _run(full, predicted)
    reports = [json.loads(line) for line in _run(quick, predicted).splitlines()]
    assert len(reports) == 6  # manifest, prepared, one shard's four stages
    assert all(report["ok"] for report in reports)


_ORIGINAL_TRAIN_PY = """
import torch
import torch.nn.functional as F
from torch import nn


class MLPClassifier(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_class):
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, num_class)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = F.relu(self.bn1(self.hidden_layer(x)))
        return self.output_layer(self.dropout(x))


torch.save(MLPClassifier(3328, 512, 2), "500_model.pth")
"""


def test_import_classifier_command_converts_an_original_pickle(tmp_path: Path) -> None:
    """The published file is a whole module pickled from the original's __main__."""
    subprocess.run([sys.executable, "-c", _ORIGINAL_TRAIN_PY], cwd=tmp_path, check=True)
    (command,) = _commands("models import-classifier")
    _run(command, tmp_path)
    classifier = load_classifier(tmp_path / "500bp.ckpt")
    assert (classifier.chunk_size, classifier.input_dim) == (500, 3328)


def test_embed_commands_with_named_models_run(tmp_path: Path, demo_cache: Path) -> None:
    """A model folder by path, ESM-2 by name from the torch hub cache (offline)."""
    shutil.copytree(demo_cache / DNABERT_DEMO_DIR, tmp_path / "DNABERT-S")
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(demo_cache / ESM_DEMO_NAME, hub / "esm2_t36_3B_UR50D.pt")
    (tmp_path / "orfs.nucleotide.fa").write_text(">c1_chunk_1F1\nATGAAACCCGGGTTT\n")
    (tmp_path / "orfs.protein.faa").write_text(">c1_chunk_1F1\nMKPGF\n")
    env = {"TORCH_HOME": str(tmp_path / "torch-home"), "VIRNUCPRO_OFFLINE": "1"}
    for command in _commands("embed", 1):
        _run(command, tmp_path, env)
    info = ckptkit.load(tmp_path / "protein.ckpt").info
    assert info.metadata["model"]["path"] == str(hub / "esm2_t36_3B_UR50D.pt")
    (example,) = _blocks("embed", "python")
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_prepare_command_runs_as_written(tmp_path: Path) -> None:
    _inputs(tmp_path)
    (command,) = _commands("prepare")
    _run(command, tmp_path)
    records = (tmp_path / "prepared" / "records.tsv").read_text().splitlines()
    assert [row.split("\t")[1] for row in records[1:]] == [
        "contigs.fa",
        "contigs.fa",
        "more-contigs.fa.gz",
    ]
