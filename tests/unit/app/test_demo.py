"""Demo models: real formats, seeded, loudly marked as not biology."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from virnucpro_app.demo import make_demo_models
from virnucpro_app.models import DemoModelWarning, load_encoder
from virnucpro_app.models.demo_weights import (
    DEMO_MARKER,
    DNABERT_SPECIALS,
    sorted_safetensors_metadata,
)


def test_same_seed_gives_identical_weights_other_seed_differs(tmp_path: Path) -> None:
    a = make_demo_models(tmp_path / "a", seed=1)
    b = make_demo_models(tmp_path / "b", seed=1)
    c = make_demo_models(tmp_path / "c", seed=2)
    # Byte for byte: the metadata keys are written sorted (whatever order
    # safetensors' map takes in this process).
    assert (a.dnabert_dir / "model.safetensors").read_bytes() == (
        b.dnabert_dir / "model.safetensors"
    ).read_bytes()
    da, db, dc = (
        load_file(str(m.dnabert_dir / "model.safetensors")) for m in (a, b, c)
    )
    assert da.keys() == db.keys()
    assert all(torch.equal(da[k], db[k]) for k in da)
    name = "encoder.layer.0.mlp.wo.weight"
    assert not torch.equal(da[name], dc[name])
    with torch.serialization.safe_globals([argparse.Namespace]):
        sa = torch.load(a.esm_path, weights_only=True)["model"]
        sb = torch.load(b.esm_path, weights_only=True)["model"]
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_demo_files_follow_the_published_layouts(tmp_path: Path) -> None:
    demo = make_demo_models(tmp_path)
    assert demo.esm_path.name.startswith("esm2")
    assert demo.esm_path.with_name("esm2_t2_demo-contact-regression.pt").is_file()
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(demo.esm_path, weights_only=True)
    assert isinstance(data["cfg"]["model"], argparse.Namespace)
    assert data["cfg"]["model"].encoder_layers == 2
    assert any(
        k.startswith("encoder.sentence_encoder.layers.1.") for k in data["model"]
    )
    assert any(k.startswith("encoder.lm_head.") for k in data["model"])
    config = json.loads((demo.dnabert_dir / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    assert config["virnucpro_demo"] == DEMO_MARKER
    assert data["virnucpro_demo"] == DEMO_MARKER


def test_demo_tokenizer_has_dnabert_specials_and_template(tmp_path: Path) -> None:
    demo = make_demo_models(tmp_path)
    tokenizer = Tokenizer.from_file(str(demo.dnabert_dir / "tokenizer.json"))
    assert [tokenizer.token_to_id(t) for t in DNABERT_SPECIALS] == [0, 1, 2, 3, 4]
    encoding = tokenizer.encode("ACGTTGCA")
    assert encoding.tokens[0] == "[CLS]"
    assert encoding.tokens[-1] == "[SEP]"
    assert len(encoding.ids) < len("ACGTTGCA") + 2  # BPE merges bases


@pytest.mark.parametrize("kind", ["dnabert", "esm"])
def test_loading_a_demo_model_warns_not_biology(tmp_path: Path, kind: str) -> None:
    demo = make_demo_models(tmp_path)
    path = demo.dnabert_dir if kind == "dnabert" else demo.esm_path
    with pytest.warns(DemoModelWarning, match="NOT BIOLOGY"):
        encoder = load_encoder(kind, path, device="cpu")
    assert encoder.info.demo is True


def _metadata_keys(data: bytes) -> list[str]:
    size = int.from_bytes(data[:8], "little")
    return list(json.loads(data[8 : 8 + size])["__metadata__"])


def test_demo_weights_file_has_one_byte_layout_whatever_order_safetensors_chose(
    tmp_path: Path,
) -> None:
    from safetensors.torch import load, save

    data = save({"b": torch.arange(3.0), "a": torch.ones(2, 2)}, metadata=_THREE)
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    for order in (sorted(_THREE), sorted(_THREE, reverse=True)):
        header["__metadata__"] = {key: _THREE[key] for key in order}
        text = json.dumps(header, separators=(",", ":")).encode().ljust(size)
        variant = data[:8] + text + data[8 + size :]
        assert _metadata_keys(variant) == order
        fixed = sorted_safetensors_metadata(variant)
        assert _metadata_keys(fixed) == sorted(_THREE)
        assert fixed == sorted_safetensors_metadata(data)
        assert len(fixed) == len(data)
        loaded = load(fixed)
        assert torch.equal(loaded["b"], torch.arange(3.0))
        assert torch.equal(loaded["a"], torch.ones(2, 2))
    folder = make_demo_models(tmp_path).dnabert_dir
    written = (folder / "model.safetensors").read_bytes()
    assert _metadata_keys(written) == ["format", "virnucpro_demo"]


_THREE = {"virnucpro_demo": DEMO_MARKER, "format": "pt", "m": "x"}
