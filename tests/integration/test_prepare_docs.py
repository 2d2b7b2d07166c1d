"""The ``## prepare`` example of docs/app/usage.md, run as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from ckptkit.types import ExitCode

from ..support.subprocess_runner import run_cli

USAGE = Path(__file__).resolve().parents[2] / "docs" / "app" / "usage.md"


def _section() -> str:
    return USAGE.read_text().split("\n## prepare\n", 1)[1].split("\n## ", 1)[0]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), re.DOTALL)


def test_documented_prepare_example_produces_the_documented_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "contigs.fa").write_text(_blocks("fasta")[0])
    command = shlex.split(_blocks("bash")[1])
    assert command[:2] == ["virnucpro-app", "prepare"]
    result = run_cli("virnucpro_app", [*command[1:], "--no-progress"], cwd=tmp_path)
    assert result.returncode == ExitCode.PARTIAL
    assert result.stderr == _blocks("text")[0]
    shown = re.findall(
        r"`(out/[^`]+)`[^\n]*:\n\n```text\n(.*?)```", _section(), re.DOTALL
    )
    assert [name for name, _ in shown] == [
        "out/chunks.fa",
        "out/orfs.protein.faa",
        "out/orfs.nucleotide.fa",
        "out/records.tsv",
    ]
    for name, text in shown:
        assert (tmp_path / name).read_text().startswith(text), name
    assert (tmp_path / "out/records.tsv").read_text() == shown[-1][1]
    assert (tmp_path / "out/chunks.fa").read_text() == shown[0][1]


def test_documented_python_example_runs(tmp_path: Path) -> None:
    (tmp_path / "contigs.fa").write_text(_blocks("fasta")[0])
    result = subprocess.run(
        [sys.executable, "-c", _blocks("python")[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "contig1_chunk_1F1 MKPG",
        "[('contig1', 'prepared'), ('contig2', 'prepared')]",
    ]
