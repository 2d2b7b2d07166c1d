"""``virnucpro-app models make-demo`` and ``embed`` end to end, in subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ckptkit

from ..support.subprocess_runner import run_cli
from ..support.tiny_models import load_quietly

DNA = {
    "c1": "ACGTACGGATTACAGATTACA" * 5,
    "c2": "TTGACA",
    "c3": "ACGTACGGATTACAGATTACA" * 5,
    "c4": "GCGCGCNNAT" * 30,
}
PROTEINS = {
    "p1": "MKTAYIAKQRQISFVKSHFSRQ",
    "p2": "MW",
    "p3": "MKTAYIAKQRQISFVKSHFSRQ",
    "p4": "ACDEFGHIKLMNPQRSTVWY" * 9,
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("demo") / "models"
    result = run_cli("virnucpro_app", ["models", "make-demo", target])
    assert result.returncode == 0, result.stderr
    assert "NOT BIOLOGY" in result.stderr
    assert f"esm: {target / 'esm2_t2_demo.pt'}" in result.stdout
    return target


def _fasta(path: Path, records: dict[str, str]) -> Path:
    path.write_text(
        "".join(f">{k} some description\n{v}\n" for k, v in records.items())
    )
    return path


@pytest.mark.parametrize(
    ("kind", "model", "records"),
    [("dnabert", "dnabert-s-demo", DNA), ("esm", "esm2_t2_demo.pt", PROTEINS)],
)
def test_embed_writes_ids_and_float32_embeddings_in_input_order(
    demo_dir: Path, tmp_path: Path, kind: str, model: str, records: dict[str, str]
) -> None:
    fasta = _fasta(tmp_path / "in.fa", records)
    output = tmp_path / "out.ckpt"
    result = run_cli(
        "virnucpro_app",
        [
            "embed",
            kind,
            "--model",
            demo_dir / model,
            "--input",
            fasta,
            "--output",
            output,
            "--tokens-per-batch",
            "64",
            "--no-progress",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert "NOT BIOLOGY" in result.stderr
    checkpoint = ckptkit.load(output)
    assert checkpoint.info.schema == "virnucpro.embeddings"
    assert checkpoint.state["ids"] == list(records)
    embeddings = checkpoint.state["embeddings"]
    assert embeddings.dtype == torch.float32
    expected = load_quietly(kind, demo_dir / model).embed(
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


def test_embed_refuses_duplicate_ids_with_exit_1(
    demo_dir: Path, tmp_path: Path
) -> None:
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">x\nMK\n>x other\nMW\n")
    result = run_cli(
        "virnucpro_app",
        [
            "embed",
            "esm",
            "--model",
            demo_dir / "esm2_t2_demo.pt",
            "--input",
            fasta,
            "--output",
            tmp_path / "o.ckpt",
        ],
    )
    assert result.returncode == 1
    assert "duplicate record ID 'x'" in result.stderr
