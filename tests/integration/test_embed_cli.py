"""``models make-demo`` and ``embed``: the commands of docs/app/usage.md, as written.

The first ``bash`` block of the ``## embed`` section runs in a real subprocess per
line, in a folder holding the two FASTA files it names (``prepare`` made them
earlier on the page; here they hold chosen sequences); the tests then read what
it wrote.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

import ckptkit

from ..support.subprocess_runner import run_cli
from ..support.tiny_models import load_quietly

USAGE = Path(__file__).resolve().parents[2] / "docs" / "app" / "usage.md"
DNA = {
    "c1_chunk_1F1": "ACGTACGGATTACAGATTACA" * 5,
    "c1_chunk_1F2": "TTGACA",
    "c2_chunk_1R1": "ACGTACGGATTACAGATTACA" * 5,
    "c3_chunk_2F3": "GCGCGCNNAT" * 30,
}
PROTEINS = {
    "c1_chunk_1F1": "MKTAYIAKQRQISFVKSHFSRQ",
    "c1_chunk_1F2": "MW",
    "c2_chunk_1R1": "MKTAYIAKQRQISFVKSHFSRQ",
    "c3_chunk_2F3": "ACDEFGHIKLMNPQRSTVWY" * 9,
}


def _documented_commands() -> list[list[str]]:
    section = USAGE.read_text().split("## embed", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def _fasta(path: Path, records: dict[str, str]) -> None:
    path.write_text("".join(f">{k} desc\n{v}\n" for k, v in records.items()))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("usage")
    (folder / "prepared").mkdir()
    _fasta(folder / "prepared" / "orfs.nucleotide.fa", DNA)
    _fasta(folder / "prepared" / "orfs.protein.faa", PROTEINS)
    for command in _documented_commands():
        assert command[0] == "virnucpro-app"
        quiet = ["--no-progress"] if command[1] == "embed" else []
        result = run_cli("virnucpro_app", [*command[1:], *quiet], cwd=folder)
        assert result.returncode == 0, (command, result.stderr)
        assert "NOT BIOLOGY" in result.stderr
    return folder


def test_documented_commands_are_make_demo_and_both_embeds() -> None:
    kinds = [c[1:3] for c in _documented_commands()]
    assert kinds == [["models", "make-demo"], ["embed", "dnabert"], ["embed", "esm"]]


@pytest.mark.parametrize(
    ("kind", "output", "model", "records"),
    [
        ("dnabert", "dna.ckpt", "demo-models/dnabert-s-demo", DNA),
        ("esm", "protein.ckpt", "demo-models/esm2_t2_demo.pt", PROTEINS),
    ],
)
def test_embed_writes_ids_and_float32_embeddings_in_input_order(
    workdir: Path, kind: str, output: str, model: str, records: dict[str, str]
) -> None:
    checkpoint = ckptkit.load(workdir / output)
    assert checkpoint.info.schema == "virnucpro.embeddings"
    assert checkpoint.state["ids"] == list(records)
    embeddings = checkpoint.state["embeddings"]
    assert embeddings.dtype == torch.float32
    expected = load_quietly(kind, workdir / model).embed(
        list(records), list(records.values())
    )
    assert torch.allclose(embeddings, expected, rtol=0, atol=1e-6)
    assert torch.equal(embeddings[0], embeddings[2])  # identical sequences
    meta = checkpoint.info.metadata
    assert meta["model"]["kind"] == kind
    assert meta["model"]["identity"].startswith("xxh3_128:")
    assert meta["model"]["demo"] is True
    assert (meta["precision"], meta["device"]) == ("fp32", "cpu")
    assert meta["embedding_dim"] == embeddings.shape[1]
    assert meta["num_sequences"] == len(records)
    assert meta["input"]["identity"].startswith("xxh3_128:")


def test_documented_options_exist() -> None:
    section = USAGE.read_text().split("## embed", 1)[1].split("\n## ", 1)[0]
    result = run_cli("virnucpro_app", ["embed", "--help"], env={"COLUMNS": "200"})
    assert result.returncode == 0
    for option in set(re.findall(r"`(--[a-z-]+)`", section)):
        assert option in result.stdout, option


def test_embed_refuses_duplicate_ids_with_exit_1(workdir: Path, tmp_path: Path) -> None:
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">x\nMK\n>x other\nMW\n")
    result = run_cli(
        "virnucpro_app",
        [
            "embed",
            "esm",
            "--model",
            workdir / "demo-models/esm2_t2_demo.pt",
            "--input",
            fasta,
            "--output",
            tmp_path / "o.ckpt",
        ],
    )
    assert result.returncode == 1
    assert "duplicate record ID 'x'" in result.stderr
    assert not (tmp_path / "o.ckpt").exists()
