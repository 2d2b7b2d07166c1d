"""predict --adopt: features of the original tool's and the refactor's files.

The legacy folder holds, as those tools write them: the demo encoders' features
of some frames (DNABERT-S and ESM-2 files of the original, a merged file of the
refactor), features of every frame at the published widths (768 and 2560), a
damaged file and a file of frames that are not this run's. With the demo
encoders the first kind is adopted and the second refused for its width; with
encoders of the published widths it is the other way round.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import ckptkit
from virnucpro_app.demo import write_demo_classifier
from virnucpro_app.models.classifier import load_classifier
from virnucpro_app.models.demo_weights import write_dnabert_folder, write_esm2_file

from ..support.legacy_features import (
    write_dnabert_features,
    write_esm_features,
    write_merged_features,
)
from .predict_support import (
    assert_same_outputs,
    read_predictions,
    read_summary,
    run_predict,
)

FRAMES = 19  # the session sample's


def _embeddings(run: Path, kind: str) -> tuple[list[str], torch.Tensor]:
    ids: list[str] = []
    rows = []
    for path in sorted((run / "checkpoints").glob(f"shard-*.{kind}.ckpt")):
        state = ckptkit.load(path).state
        ids += state["ids"]
        rows.append(state["embeddings"])
    return ids, torch.cat(rows)


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            stat = path.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory, reference: Path) -> Path:
    root = tmp_path_factory.mktemp("legacy") / "contigs_merged"
    ids, dnabert = _embeddings(reference, "dnabert")
    esm_ids, esm = _embeddings(reference, "esm")
    assert ids == esm_ids and len(ids) == FRAMES
    # the original: DNABERT-S and ESM-2 features of frames 1-10 in two folders
    write_dnabert_features(
        root / "nucleotide/output_1_DNABERT_S.pt", ids[:10], dnabert[:10]
    )
    write_esm_features(root / "protein/output_1_ESM.pt", ids[:10], esm[:10])
    # the refactor: merged features of frames 11-14, with version and status
    merged = torch.cat([dnabert, esm], 1)
    write_merged_features(
        root / "output_2_merged.pt", ids[10:14], merged[10:14], refactor=True
    )
    # every frame at the published widths (random numbers)
    generator = torch.Generator().manual_seed(3)
    write_dnabert_features(
        root / "published/output_1_DNABERT_S.pt",
        ids,
        torch.randn(FRAMES, 768, generator=generator),
    )
    write_esm_features(
        root / "published/output_1_ESM.pt",
        ids,
        torch.randn(FRAMES, 2560, generator=generator),
    )
    # frames of another input, and a file cut short
    others = [f"elsewhere_chunk_{k}F1" for k in (1, 2, 3)]
    write_dnabert_features(root / "other/output_4_DNABERT_S.pt", others, dnabert[:3])
    damaged = write_esm_features(root / "output_3_ESM.pt", ids[:5], esm[:5])
    damaged.write_bytes(damaged.read_bytes()[:300])
    return root


def test_adopt_takes_matching_features_and_computes_the_rest(
    tmp_path: Path, sample: Path, demo_cache: Path, reference: Path, legacy: Path
) -> None:
    before = _tree_digest(legacy)
    output = tmp_path / "adopted"
    result = run_predict([sample], output, demo_cache, "--adopt", str(legacy))
    assert result.returncode == 0, result.stderr
    assert _tree_digest(legacy) == before  # nothing in LEGACY_DIR was written
    assert "adopted 14 DNABERT-S and 14 ESM-2 features from 7 legacy files" in (
        result.stderr
    )
    assert_same_outputs(output, reference)
    summary = read_summary(output)
    adoption = summary["adoption"]
    assert adoption["adopted"] == {"dnabert": 14, "esm": 14}
    assert adoption["computed"] == {"dnabert": FRAMES - 14, "esm": FRAMES - 14}
    assert adoption["refused"] == {
        "unknown_id": 3,
        "duplicate_id": 0,
        "wrong_width": 2 * FRAMES,
        "damaged_file": 1,
    }
    refusals = {item["name"]: item["refused"] for item in adoption["files"]}
    assert (
        refusals["published/output_1_ESM.pt"] == "wrong width: 2560 where 64 is needed"
    )
    assert refusals["output_3_ESM.pt"].startswith("damaged file: ")
    assert summary["computed_frames"] == {"dnabert": FRAMES - 14, "esm": FRAMES - 14}
    files = dict(summary["manifest"]["adopted"])
    assert len(files) == 7
    assert files["output_2_merged.pt"].startswith("xxh3_128:")
    # a resume must name the same legacy files: they are part of the results
    result = run_predict([sample], output, demo_cache, "--resume")
    assert result.returncode == 1
    assert "--adopt files 7 files -> none" in result.stderr
    result = run_predict(
        [sample], output, demo_cache, "--resume", "--adopt", str(legacy)
    )
    assert result.returncode == 0, result.stderr
    assert read_summary(output)["computed_frames"] == {"dnabert": 0, "esm": 0}


def test_features_of_the_published_widths_are_adopted_by_encoders_of_those_widths(
    tmp_path: Path, sample: Path, demo_cache: Path, legacy: Path
) -> None:
    models = tmp_path / "models"
    dnabert = write_dnabert_folder(
        models / "DNABERT-S",
        hidden_size=768,
        num_layers=1,
        num_heads=12,
        intermediate_size=32,
    )
    esm = write_esm2_file(
        models / "esm2_t0_wide.pt", num_layers=0, embed_dim=2560, num_heads=40
    )
    classifier = write_demo_classifier(
        models / "300bp.ckpt", input_dim=3328, chunk_size=300
    )
    output = tmp_path / "published"
    result = run_predict(
        [sample],
        output,
        demo_cache,
        "--adopt",
        str(legacy),
        "--dnabert",
        str(dnabert),
        "--esm",
        str(esm),
        "--classifier",
        str(classifier),
    )
    assert result.returncode == 0, result.stderr
    adoption = read_summary(output)["adoption"]
    assert adoption["adopted"] == {"dnabert": FRAMES, "esm": FRAMES}
    assert adoption["computed"] == {"dnabert": 0, "esm": 0}  # no encoder ran
    assert adoption["refused"]["wrong_width"] == 10 + 10 + 4 + 3
    payload_d = torch.load(
        legacy / "published/output_1_DNABERT_S.pt", weights_only=True
    )
    payload_e = torch.load(legacy / "published/output_1_ESM.pt", weights_only=True)
    features = torch.cat(
        [
            torch.tensor([item["mean_representation"] for item in payload_d["data"]]),
            torch.stack(payload_e["data"]),
        ],
        1,
    )
    scores = load_classifier(classifier).scores(features).tolist()
    predictions = read_predictions(output)
    assert list(predictions) == payload_d["nucleotide"]
    for frame_id, (others, virus) in zip(payload_d["nucleotide"], scores, strict=True):
        assert abs(predictions[frame_id].score1 - others) <= 1e-6
        assert abs(predictions[frame_id].score2 - virus) <= 1e-6
    assert json.loads((output / "run_summary.json").read_text())["frames"] == FRAMES
