"""A failed start writes nothing and never blocks the corrected command.

Also the wrong kind of sequence (protein where contigs are expected and the
reverse), readable refusals of a resume, and ``--version``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

from virnucpro_app import __version__
from virnucpro_app.demo import write_demo_classifier

from .predict_support import coding_contig, run_app, run_predict, write_fasta

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _one_error(result: object) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    (line,) = _error_lines(stderr)
    return line


def test_empty_input_fails_before_anything_is_written(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    output = tmp_path / "out"
    result = run_predict([sample, empty], output, demo_cache)
    assert result.returncode == 1
    assert "empty file" in _one_error(result)
    assert not output.exists()


def test_missing_models_are_reported_at_once_before_anything_is_written(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    output = tmp_path / "out"
    missing = [tmp_path / "DNABERT-S", tmp_path / "esm2.pt", tmp_path / "500bp.ckpt"]
    result = run_predict(
        [sample],
        output,
        demo_cache,
        "--dnabert",
        str(missing[0]),
        "--esm",
        str(missing[1]),
        "--classifier",
        str(missing[2]),
    )
    assert result.returncode == 1
    line = _one_error(result)
    for flag, path in zip(("--dnabert", "--esm", "--classifier"), missing, strict=True):
        assert f"{flag} {path} does not exist" in line
    assert not output.exists()


def test_a_classifier_that_does_not_fit_the_encoders_is_refused_up_front(
    tmp_path: Path, sample: Path, demo_cache: Path
) -> None:
    other = write_demo_classifier(
        tmp_path / "wide.ckpt", input_dim=3328, chunk_size=300
    )
    output = tmp_path / "out"
    result = run_predict([sample], output, demo_cache, "--classifier", str(other))
    assert result.returncode == 1
    assert "expects 3328-wide features" in _one_error(result)
    assert "do not belong together" in _one_error(result)
    assert not output.exists()


def test_a_run_that_never_finished_preparing_does_not_block_the_corrected_command(
    tmp_path: Path, demo_cache: Path
) -> None:
    """A duplicate ID deep in the file stops prepare after the folder was set up."""
    rng = random.Random(2)
    good = [(f"c{i}", coding_contig(rng, 300)) for i in range(2)]
    broken = write_fasta(tmp_path / "contigs.fa", [*good, ("c0", "ACGT" * 50)])
    output = tmp_path / "out"
    result = run_predict([broken], output, demo_cache)
    assert result.returncode == 1
    assert "duplicate record ID 'c0'" in _one_error(result)
    assert (output / "checkpoints" / "manifest.ckpt").exists()
    write_fasta(broken, good)  # the corrected input, same command
    result = run_predict([broken], output, demo_cache)
    assert result.returncode == 0, result.stderr
    write_fasta(broken, [*good, ("c0", "ACGT")])  # again, then --resume
    shutil.rmtree(output)
    assert run_predict([broken], output, demo_cache).returncode == 1
    write_fasta(broken, good[:1])
    result = run_predict([broken], output, demo_cache, "--resume")
    assert result.returncode == 0, result.stderr


def test_protein_fasta_is_refused_by_predict_and_prepare(
    tmp_path: Path, demo_cache: Path
) -> None:
    rng = random.Random(5)
    records = [
        (f"p{i}", "".join(rng.choice(AMINO_ACIDS) for _ in range(300)))
        for i in range(3)
    ]
    proteins = write_fasta(tmp_path / "proteins.faa", records)
    output = tmp_path / "out"
    result = run_predict([proteins], output, demo_cache)
    assert result.returncode == 1
    line = _one_error(result)
    assert "looks like protein FASTA" in line
    assert "embed esm" in line
    assert not output.exists()
    result = run_app(["prepare", proteins, "-o", output, "--no-progress"])
    assert result.returncode == 1
    assert "looks like protein FASTA" in _one_error(result)
    assert not output.exists()


def test_embed_refuses_the_other_kind_of_sequence(
    tmp_path: Path, demo_cache: Path
) -> None:
    dna = write_fasta(tmp_path / "dna.fa", [("d1", "ATGAAACCCGGGTTTACGTACGTAC")])
    protein = write_fasta(tmp_path / "protein.faa", [("p1", "MKTAYIAKQRQISFVKSHFSRQ")])
    cases = [
        ("esm", "esm2_t2_demo.pt", dna, "looks like nucleotide FASTA", "embed dnabert"),
        ("dnabert", "dnabert-s-demo", protein, "looks like protein FASTA", "embed esm"),
    ]
    for kind, model, path, looks, fits in cases:
        output = tmp_path / f"{kind}.ckpt"
        result = run_app(
            [
                "embed", kind, "--model", demo_cache / model, "--input", path,
                "--output", output, "--no-progress",
            ],
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        line = _one_error(result)
        assert looks in line
        assert fits in line
        assert not output.exists()


def test_a_refused_resume_lists_what_changed_readably(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path
) -> None:
    output = tmp_path / "changed"
    shutil.copytree(reference, output)
    changed = tmp_path / sample.name
    changed.write_text(sample.read_text() + ">extra\nACGTACGTAA\n")
    result = run_predict([changed], output, demo_cache, "--resume", "--shard-size", "8")
    assert result.returncode == 1
    line = _one_error(result)
    before, after = sample.stat().st_size, changed.stat().st_size
    assert f"input contigs.fa changed ({before:,} -> {after:,} bytes)" in line
    assert "shard size 7 -> 8" in line
    assert "[[" not in line
    assert "'" not in line  # no Python reprs


def test_version_flag_prints_the_version_without_importing_torch() -> None:
    shown = run_app(["--version"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == __version__
    assert run_app(["version"]).stdout.strip() == __version__
    probe = (
        "import sys\n"
        "from virnucpro_app.cli import main\n"
        "sys.argv = ['virnucpro-app', '--version']\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code == 0\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == [__version__, "False"]
