"""Shared pieces of the predict end-to-end tests: inputs, runs, output parsing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..support.subprocess_runner import run_console_script

#: The installed ``virnucpro-app`` console script (next to this interpreter).
APP = Path(sys.executable).with_name("virnucpro-app")
STOPS = {"TAA", "TAG", "TGA"}
CODONS = [
    a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in STOPS
]


def coding_contig(rng: random.Random, length: int) -> str:
    """A contig made of long open reading frames, so most chunks keep frames."""
    sequence = ""
    while len(sequence) < length:
        codons = rng.randint(150, 400)
        sequence += "ATG" + "".join(rng.choice(CODONS) for _ in range(codons)) + "TAA"
    return sequence[:length]


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    with path.open("w") as handle:
        for name, sequence in records:
            handle.write(f">{name} test contig\n")
            for start in range(0, len(sequence), 60):
                handle.write(sequence[start : start + 60] + "\n")
    return path


def make_input(path: Path, *, seed: int = 7, count: int = 6) -> Path:
    rng = random.Random(seed)
    records = [
        (f"contig{i}", coding_contig(rng, rng.randint(700, 1600))) for i in range(count)
    ]
    return write_fasta(path, records)


def predict_args(inputs: list[Path], output: Path, *extra: str) -> list[str]:
    return [
        "predict",
        *map(str, inputs),
        "--demo",
        "--output-dir",
        str(output),
        "--model-type",
        "300",
        "--shard-size",
        "7",
        "--slice-size",
        "3",
        "--no-progress",
        *extra,
    ]


def demo_env(cache: Path) -> dict[str, str]:
    return {"VIRNUCPRO_DEMO_CACHE": str(cache)}


def run_app(
    args: list[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``virnucpro-app`` console script."""
    return run_console_script(APP.name, *args, cwd=cwd, env=env, timeout_s=timeout_s)


def run_predict(
    inputs: list[Path], output: Path, cache: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_app(predict_args(inputs, output, *extra), env=demo_env(cache))


def start_predict(
    inputs: list[Path], output: Path, cache: Path, *extra: str
) -> subprocess.Popen[str]:
    env = {**os.environ, **demo_env(cache)}
    return subprocess.Popen(
        [str(APP), *predict_args(inputs, output, *extra)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@dataclass(frozen=True)
class Prediction:
    label: str
    score1: float
    score2: float


def damage(path: Path) -> bytes:
    """Flip a bit near the end (tensor bytes, or a tensor-free file's header)."""
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10
    path.write_bytes(bytes(data))
    return bytes(data)


def read_predictions(output: Path) -> dict[str, Prediction]:
    lines = (output / "prediction_results.txt").read_text().splitlines()
    assert lines[0] == "Sequence_ID\tPrediction\tscore1\tscore2"
    rows = {}
    for line in lines[1:]:
        frame_id, label, score1, score2 = line.split("\t")
        rows[frame_id] = Prediction(label, float(score1), float(score2))
    return rows


def read_consensus(output: Path) -> list[tuple[str, str]]:
    lines = (output / "prediction_results_highestscore.csv").read_text().splitlines()
    assert lines[0] == "Modified_ID\tIs_Virus"
    return [tuple(line.split("\t")) for line in lines[1:]]  # type: ignore[misc]


def read_summary(output: Path) -> dict[str, object]:
    return json.loads((output / "run_summary.json").read_text())


def assert_same_outputs(actual: Path, expected: Path) -> None:
    got, want = read_predictions(actual), read_predictions(expected)
    assert list(got) == list(want)
    for frame_id, row in want.items():
        assert got[frame_id].label == row.label, frame_id
        assert abs(got[frame_id].score1 - row.score1) <= 1e-6, frame_id
        assert abs(got[frame_id].score2 - row.score2) <= 1e-6, frame_id
    assert read_consensus(actual) == read_consensus(expected)
