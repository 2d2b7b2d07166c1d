"""docs/app/usage.md runs as written, in order, in one folder.

:func:`walkthrough` prepares a folder holding the files the page names and that
no earlier step makes (inputs, models under the names shown, the original's
classifier pickle, legacy feature files for ``--adopt``; all made from the demo
models), then runs every ``bash`` block (plus ``--no-progress``), writes the
``fasta`` block where the page says, and runs every ``python`` block, in the
page's order. The tests below check what each step made. The ``text`` blocks of
``## prepare`` (expected output) are compared by ``test_prepare_docs.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import pytest
import torch

import ckptkit
from virnucpro_app import __version__
from virnucpro_app.demo import DEMO_CLASSIFIER_NAME, DNABERT_DEMO_DIR, ESM_DEMO_NAME
from virnucpro_app.fasta import read_records
from virnucpro_app.models.classifier import load_classifier
from virnucpro_app.prepare import prepare_records

from ..support.legacy_features import write_dnabert_features, write_esm_features
from ..support.tiny_models import load_quietly
from .predict_support import (
    coding_contig,
    demo_env,
    make_input,
    read_predictions,
    read_summary,
    run_app,
    write_fasta,
)
from .test_import_classifier import ORIGINAL_TRAIN

#: The walkthrough is the whole page (about 20 commands, a training among them)
#: in one fixture: more than pytest's per-test limit for one command.
pytestmark = pytest.mark.timeout(1200)
TESTS = Path(__file__).resolve().parents[1]
USAGE = TESTS.parent / "docs" / "app" / "usage.md"
_PREPARE_EXAMPLE = (
    "integration/test_prepare_docs.py::"
    "test_documented_prepare_example_produces_the_documented_files"
)
#: The blocks no walkthrough runs: expected outputs, compared elsewhere.
COMPARED_ELSEWHERE = {("prepare", "text", n): _PREPARE_EXAMPLE for n in range(5)}
#: Commands that end otherwise than 0, by (section, block, line).
EXPECTED_CODES = {("prepare", 1, 0): 2}  # the toy example skips a record


def _sections() -> dict[str, str]:
    parts = re.split(
        r"^## (.+)$", USAGE.read_text(encoding="utf-8"), flags=re.MULTILINE
    )
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2], strict=True))}


def _blocks(section: str) -> list[tuple[str, str]]:
    """``(language, text)`` of every block of a section, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)


def _commands(text: str) -> list[list[str]]:
    """The shell commands of a ``bash`` block (continued lines joined)."""
    lines = [
        shlex.split(line, comments=True)
        for line in text.replace("\\\n", " ").splitlines()
    ]
    return [line for line in lines if line]


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(str(path.stat().st_mtime_ns).encode() + path.read_bytes())
    return digest.hexdigest()


@dataclass
class Walk:
    """The folder the page ran in and what each step printed."""

    folder: Path
    stdout: dict[tuple[str, int, int], str] = field(default_factory=dict)
    legacy_digest: str = ""


def _write_legacy_features(folder: Path, contigs: Path) -> None:
    """``contigs_merged/`` as the original leaves it, for the ``--adopt`` example."""
    ids: list[str] = []
    nucleotides: list[str] = []
    proteins: list[str] = []
    for batch in prepare_records(read_records([contigs]), chunk_size_bp=500):
        ids += batch.frame_ids
        nucleotides += batch.frame_nucleotides
        proteins += batch.frame_proteins
    dnabert = load_quietly("dnabert", folder / "DNABERT-S")
    esm = load_quietly("esm", folder / "esm2_t36_3B_UR50D.pt")
    root = folder / "contigs_merged"
    write_dnabert_features(
        root / "contigs_nucleotide/output_1_DNABERT_S.pt",
        ids,
        dnabert.embed(ids, nucleotides),
    )
    write_esm_features(
        root / "contigs_protein/output_1_ESM.pt", ids, esm.embed(ids, proteins)
    )


def _prepare_folder(folder: Path, cache: Path) -> dict[str, str]:
    make_input(folder / "contigs.fa", seed=3, count=2)
    more = write_fasta(folder / "more.fa", [("more1", coding_contig(Random(4), 900))])
    (folder / "more-contigs.fa.gz").write_bytes(gzip.compress(more.read_bytes()))
    more.unlink()
    for name, seed in (("virus.fa", 1), ("host.fa", 2)):
        rng = Random(seed)
        write_fasta(
            folder / name,
            [
                (f"c{seed}_{i}", coding_contig(rng, rng.randint(600, 1200)))
                for i in range(6)
            ],
        )
    shutil.copytree(cache / DNABERT_DEMO_DIR, folder / "DNABERT-S")
    shutil.copy(cache / ESM_DEMO_NAME, folder / "esm2_t36_3B_UR50D.pt")
    shutil.copy(cache / DEMO_CLASSIFIER_NAME.format(size=500), folder / "500bp.ckpt")
    subprocess.run(
        [sys.executable, "-c", ORIGINAL_TRAIN, "500_model.pth", "original-scores.pt"],
        cwd=folder,
        check=True,
        timeout=120,
    )
    hub = folder / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(cache / ESM_DEMO_NAME, hub / "esm2_t36_3B_UR50D.pt")
    _write_legacy_features(folder, folder / "contigs.fa")
    return {
        **demo_env(cache),
        "TORCH_HOME": str(folder / "torch-home"),
        "VIRNUCPRO_OFFLINE": "1",
    }


def _run_block(
    walk: Walk, where: tuple[str, int], text: str, env: dict[str, str]
) -> None:
    for line, command in enumerate(_commands(text)):
        assert command[0] == "virnucpro-app", command
        quiet = (
            ["--no-progress"] if command[1] in ("predict", "embed", "prepare") else []
        )
        result = run_app(
            [*command[1:], *quiet], cwd=walk.folder, env=env, timeout_s=600
        )
        expected = EXPECTED_CODES.get((*where, line), 0)
        assert result.returncode == expected, (command, result.stderr)
        walk.stdout[(*where, line)] = result.stdout


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> Walk:
    """Every block of the page, in order, in one folder."""
    walk = Walk(tmp_path_factory.mktemp("usage"))
    env = _prepare_folder(walk.folder, demo_cache)
    walk.legacy_digest = _tree_digest(walk.folder / "contigs_merged")
    for section, text in _sections().items():
        counts: dict[str, int] = {}
        for language, block in _blocks(text):
            number = counts.get(language, 0)
            counts[language] = number + 1
            if language == "bash":
                _run_block(walk, (section, number), block, env)
            elif language == "fasta":  # "With this `contigs.fa`:"
                (walk.folder / "contigs.fa").write_text(block)
            elif language == "python":
                result = subprocess.run(
                    [sys.executable, "-c", block],
                    cwd=walk.folder,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert result.returncode == 0, (section, result.stderr)
                walk.stdout[(section, -1, number)] = result.stdout
            else:
                assert (section, language, number) in COMPARED_ELSEWHERE
    return walk


def test_the_blocks_not_run_here_are_compared_by_a_test_that_exists() -> None:
    """The walkthrough runs every other block (it fails on one it cannot run)."""
    for test in set(COMPARED_ELSEWHERE.values()):
        path, name = test.split("::")
        assert re.search(rf"def {name}\(", (TESTS / path).read_text()), test


def test_version_example(walkthrough: Walk) -> None:
    assert walkthrough.stdout[("", 0, 0)].strip() == __version__


def test_predict_examples(walkthrough: Walk) -> None:
    folder = walkthrough.folder
    summary = read_summary(folder / "predictions")
    inputs = [Path(str(name)).name for name in summary["inputs"]]  # type: ignore[attr-defined]
    assert inputs == ["contigs.fa", "more-contigs.fa.gz"]
    assert (summary["model_type"], summary["demo_models"]) == (500, False)
    assert read_predictions(folder / "predictions")
    assert read_summary(folder / "demo-output")["demo_models"] is True


def test_adopt_example_takes_every_feature_and_writes_nothing_there(
    walkthrough: Walk,
) -> None:
    folder = walkthrough.folder
    adoption = read_summary(folder / "adopted")["adoption"]  # type: ignore[index]
    frames = read_summary(folder / "adopted")["frames"]
    assert adoption["adopted"] == {"dnabert": frames, "esm": frames}
    assert adoption["computed"] == {"dnabert": 0, "esm": 0}
    assert _tree_digest(folder / "contigs_merged") == walkthrough.legacy_digest
    adopted = read_predictions(folder / "adopted")
    computed = read_predictions(folder / "predictions")
    for frame_id, row in adopted.items():  # the same contigs, computed in predictions
        assert abs(row.score2 - computed[frame_id].score2) <= 1e-5


def test_train_example_makes_the_classifier_the_next_command_uses(
    walkthrough: Walk,
) -> None:
    folder = walkthrough.folder
    assert (folder / "model.training" / "train_summary.json").is_file()
    classifier = load_classifier(folder / "model.ckpt")
    assert classifier.metadata["training"]["recipe"]["lr"] == 2e-4
    predictions = read_predictions(folder / "my-predictions")
    seen = []
    for dnabert_path in sorted(
        (folder / "my-predictions/checkpoints").glob("*.dnabert.ckpt")
    ):
        dnabert = ckptkit.load(dnabert_path).state
        esm = ckptkit.load(str(dnabert_path).replace(".dnabert.", ".esm.")).state
        features = torch.cat([dnabert["embeddings"], esm["embeddings"]], 1)
        scores = classifier.scores(features).tolist()
        for frame_id, (others, virus) in zip(dnabert["ids"], scores, strict=True):
            assert abs(predictions[frame_id].score1 - others) <= 1e-6
            assert abs(predictions[frame_id].score2 - virus) <= 1e-6
            seen.append(frame_id)
    assert seen == list(predictions)


def test_validate_checkpoints_examples(walkthrough: Walk) -> None:
    full = walkthrough.stdout[("validate-checkpoints", 0, 0)].splitlines()
    assert full[0].startswith("6 valid, 0 corrupted, 0 incompatible")
    assert full[1].endswith("failed_checkpoints.txt: no failures recorded")
    document = json.loads(walkthrough.stdout[("validate-checkpoints", 0, 1)])
    assert len(document["checkpoints"]) == 6  # manifest, prepared, one shard's four
    assert all(report["ok"] for report in document["checkpoints"])
    assert document["summary"]["exit_code"] == 0


def test_import_classifier_example_converts_the_original_pickle(
    walkthrough: Walk,
) -> None:
    folder = walkthrough.folder
    classifier = load_classifier(folder / "500bp-imported.ckpt")
    assert (classifier.chunk_size, classifier.input_dim) == (500, 3328)
    original = torch.load(folder / "original-scores.pt", weights_only=True)
    scores = classifier.scores(original["features"])
    assert torch.allclose(scores, original["scores"], atol=1e-6, rtol=0)


def test_prepare_example_writes_the_inputs_of_the_embed_examples(
    walkthrough: Walk,
) -> None:
    records = (walkthrough.folder / "prepared" / "records.tsv").read_text().splitlines()
    assert [row.split("\t")[1] for row in records[1:]] == [
        "contigs.fa",
        "contigs.fa",
        "more-contigs.fa.gz",
    ]
    assert walkthrough.stdout[("prepare", -1, 0)].splitlines() == [
        "contig1_chunk_1F1 MKPG",
        "[('contig1', 'prepared'), ('contig2', 'prepared')]",
    ]


def test_embed_examples_embed_the_prepared_frames(walkthrough: Walk) -> None:
    folder = walkthrough.folder
    protein = ckptkit.load(folder / "protein.ckpt")
    hub = folder / "torch-home" / "hub" / "checkpoints" / "esm2_t36_3B_UR50D.pt"
    assert protein.info.metadata["model"]["path"] == str(hub)
    frames = (folder / "prepared" / "orfs.protein.faa").read_text().splitlines()[::2]
    assert protein.state["ids"] == [line[1:] for line in frames]
    assert ckptkit.load(folder / "dna.ckpt").state["ids"] == protein.state["ids"]
