"""Every supported on-disk layout loads; every broken one fails clearly (exit 1)."""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from virnucpro_app.errors import ModelLoadError

from ..support.subprocess_runner import run_cli
from ..support.tiny_models import load_quietly, write_tiny_dnabert, write_tiny_esm

DNA = ["ACGTACGTAAGT", "TTGCA", "GGGATTACA" * 7]
PROTEINS = ["MKTAYIAKQR", "MW", "ACDEFGHIKLMNPQRSTVWY" * 4]


def _embed(kind: str, path: Path) -> torch.Tensor:
    sequences = DNA if kind == "dnabert" else PROTEINS
    return load_quietly(kind, path).embed([str(i) for i in range(3)], sequences)


@pytest.mark.parametrize(
    ("weights", "prefix"),
    [("safetensors", ""), ("bin", ""), ("safetensors", "bert."), ("bin", "bert.")],
)
def test_dnabert_layouts_load_to_the_same_model(
    tmp_path: Path, weights: str, prefix: str
) -> None:
    plain = _embed("dnabert", write_tiny_dnabert(tmp_path / "plain"))
    variant = _embed(
        "dnabert", write_tiny_dnabert(tmp_path / "v", weights=weights, prefix=prefix)
    )
    assert torch.equal(plain, variant)


def test_dnabert_old_gamma_beta_layernorm_names_load(tmp_path: Path) -> None:
    folder = write_tiny_dnabert(tmp_path / "m")
    state = load_file(str(folder / "model.safetensors"))
    renamed = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in state.items()
    }
    before = _embed("dnabert", folder)
    save_file(renamed, str(folder / "model.safetensors"))
    assert torch.equal(_embed("dnabert", folder), before)


def test_esm_loads_without_its_contact_regression_file(tmp_path: Path) -> None:
    path = write_tiny_esm(tmp_path)
    before = _embed("esm", path)
    path.with_name(f"{path.stem}-contact-regression.pt").unlink()
    assert torch.equal(_embed("esm", path), before)


def test_esm_half_precision_file_is_cast_at_load(tmp_path: Path) -> None:
    path = write_tiny_esm(tmp_path)
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(path, weights_only=True)
    data["model"] = {k: v.half() for k, v in data["model"].items()}
    torch.save(data, path)
    assert _embed("esm", path).dtype == torch.float32


def test_esm_named_model_is_found_in_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIRNUCPRO_OFFLINE", "1")
    write_tiny_esm(
        tmp_path / "torch" / "hub" / "checkpoints", name="esm2_t6_8M_UR50D.pt"
    )
    encoder = load_quietly("esm", "esm2_t6_8M_UR50D")
    assert encoder.info.path.endswith("hub/checkpoints/esm2_t6_8M_UR50D.pt")


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError, match="esm2_t36_3B_UR50D"):
        load_quietly("esm", "esm2_t99_9T_UR50D")


def test_esm_file_with_more_layers_than_its_cfg_is_refused(tmp_path: Path) -> None:
    path = write_tiny_esm(tmp_path, num_layers=2)
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(path, weights_only=True)
    data["cfg"]["model"].encoder_layers = 1
    torch.save(data, path)
    with pytest.raises(ModelLoadError, match=r"unexpected tensor\(s\): .*layers\.1\."):
        load_quietly("esm", path)


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    folder = write_tiny_dnabert(tmp_path / "m")
    state = load_file(str(folder / "model.safetensors"))
    del state["encoder.layer.1.mlp.wo.bias"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(
        ModelLoadError, match=r"missing 1 tensor\(s\): encoder\.layer\.1\.mlp\.wo\.bias"
    ):
        load_quietly("dnabert", folder)


def test_esm1_style_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "esm1b.pt"
    torch.save({"model": {}, "args": argparse.Namespace(arch="roberta_large")}, path)
    with pytest.raises(ModelLoadError, match="ESM-1"):
        load_quietly("esm", path)


# ------------------------------------------------------------ through the CLI
@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    path = tmp_path / "in.fa"
    path.write_text(">a\nACGTAC\n>b\nMKTA\n")
    return path


def _cli_fails(
    kind: str,
    model: Path | str,
    fasta: Path,
    *needles: str,
    env: dict[str, str] | None = None,
) -> None:
    # The input each model takes (a file of the other kind is refused first).
    fasta.write_text(
        ">a\nACGTAC\n>b\nACGTTA\n" if kind == "dnabert" else ">a\nMKTAYIAK\n>b\nMKTA\n"
    )
    result = run_cli(
        "virnucpro_app",
        [
            "embed",
            kind,
            "--model",
            model,
            "--input",
            fasta,
            "--output",
            fasta.with_suffix(".ckpt"),
            "--no-progress",
        ],
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "looks like" not in result.stderr  # the model failed, not the input
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("error:")
    ]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0]
    assert "Traceback" not in result.stderr
    assert not fasta.with_suffix(".ckpt").exists()


def test_cli_truncated_weights_file_exits_1(tmp_path: Path, fasta: Path) -> None:
    folder = write_tiny_dnabert(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _cli_fails(
        "dnabert", folder, fasta, str(weights), "cannot load as DNABERT-S weights"
    )


def test_cli_truncated_esm_file_exits_1(tmp_path: Path, fasta: Path) -> None:
    path = write_tiny_esm(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _cli_fails("esm", path, fasta, str(path), "cannot load as a fair-esm ESM-2 file")


def test_cli_wrong_shaped_tensor_exits_1(tmp_path: Path, fasta: Path) -> None:
    folder = write_tiny_dnabert(tmp_path / "m")
    state = load_file(str(folder / "model.safetensors"))
    state["encoder.layer.0.attention.self.Wqkv.weight"] = torch.zeros(10, 48)
    save_file(state, str(folder / "model.safetensors"))
    _cli_fails(
        "dnabert",
        folder,
        fasta,
        "wrong shape: encoder.layer.0.attention.self.Wqkv.weight is [10, 48], "
        "expected [144, 48]",
    )


def test_cli_missing_tokenizer_exits_1(tmp_path: Path, fasta: Path) -> None:
    folder = write_tiny_dnabert(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    _cli_fails("dnabert", folder, fasta, "no tokenizer.json")


def test_cli_pickle_needing_an_unlisted_global_exits_1(
    tmp_path: Path, fasta: Path
) -> None:
    path = write_tiny_esm(tmp_path)
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(path, weights_only=True)
    data["where"] = pathlib.PurePosixPath("/somewhere")
    torch.save(data, path)
    _cli_fails("esm", path, fasta, "outside the safe allowlist", "pathlib")


def test_cli_missing_named_model_offline_says_where_to_put_it(
    tmp_path: Path, fasta: Path
) -> None:
    env = {"TORCH_HOME": str(tmp_path / "th"), "VIRNUCPRO_OFFLINE": "1"}
    _cli_fails(
        "esm",
        "esm2_t36_3B_UR50D",
        fasta,
        str(tmp_path / "th" / "hub" / "checkpoints" / "esm2_t36_3B_UR50D.pt"),
        "https://dl.fbaipublicfiles.com/fair-esm/models/esm2_t36_3B_UR50D.pt",
        env=env,
    )


# Building a model skeleton on ``meta`` must not run ``normal_`` there: its Python
# meta kernel imports sympy on first use, about 2 s of every predict process.
_LOAD_BOTH_AND_LIST_SYMPY = """
import sys, warnings
from virnucpro_app.models import load_encoder
warnings.simplefilter("ignore")
load_encoder("dnabert", sys.argv[1], device="cpu", precision="fp32")
load_encoder("esm", sys.argv[2], device="cpu", precision="fp32")
print(sorted(name for name in sys.modules if name.split(".")[0] == "sympy"))
"""


def test_loading_both_encoders_builds_them_without_torchs_sympy_kernels(
    tmp_path: Path,
) -> None:
    dnabert = write_tiny_dnabert(tmp_path / "dnabert")
    esm_file = write_tiny_esm(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_BOTH_AND_LIST_SYMPY, str(dnabert), str(esm_file)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
