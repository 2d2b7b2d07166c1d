"""models import-classifier on a classifier saved the way the original saved it.

The original ``train.py`` defines ``MLPClassifier`` in the script it runs (so in
``__main__``) and pickles the whole module with ``torch.save(model, path)``;
the published ``300_model.pth`` / ``500_model.pth`` are such files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from virnucpro_app.models.classifier import load_classifier

from .predict_support import run_app

ORIGINAL_TRAIN = """
import sys

import torch
import torch.nn.functional as F
from torch import nn


class MLPClassifier(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_class):
        super(MLPClassifier, self).__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, num_class)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = F.relu(self.bn1(self.hidden_layer(x)))
        x = self.dropout(x)
        x = self.output_layer(x)
        return x


torch.manual_seed(0)
model = MLPClassifier(3328, 512, 2)
# Training moves BatchNorm's running statistics away from their defaults.
model.train()
for _ in range(5):
    model(torch.randn(64, 3328) * 1.5 + 0.3)
torch.save(model, sys.argv[1])
features = torch.randn(40, 3328, generator=torch.Generator().manual_seed(1))
model.eval()
with torch.no_grad():
    scores = torch.softmax(model(features), dim=1)
torch.save({"features": features, "scores": scores}, sys.argv[2])
"""


def test_imported_classifier_scores_as_the_original_module_in_eval_mode(
    tmp_path: Path,
) -> None:
    source = tmp_path / "500_model.pth"
    expected = tmp_path / "expected.pt"
    subprocess.run(
        [sys.executable, "-c", ORIGINAL_TRAIN, str(source), str(expected)],
        check=True,
        timeout=120,
    )
    output = tmp_path / "500bp.ckpt"
    result = run_app(["models", "import-classifier", source, "--output", output])
    assert result.returncode == 0, result.stderr
    assert "chunk size 500" in result.stdout  # from the published name
    classifier = load_classifier(output)
    assert (classifier.chunk_size, classifier.input_dim) == (500, 3328)
    reference = torch.load(expected, weights_only=True)
    scores = classifier.scores(reference["features"])
    assert torch.allclose(scores, reference["scores"], atol=1e-6, rtol=0)
    running_mean = classifier.model.bn1.running_mean
    assert not torch.equal(running_mean, torch.zeros_like(running_mean))

    renamed = tmp_path / "300_model.pth"
    renamed.write_bytes(source.read_bytes())
    result = run_app(
        [
            "models", "import-classifier", renamed, "--chunk-size", "500",
            "--output", tmp_path / "other.ckpt",
        ]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if "warning" in line]
    assert "named for 300 bp chunks but --chunk-size is 500" in warning


def test_import_classifier_says_when_a_file_is_not_a_pytorch_file(
    tmp_path: Path,
) -> None:
    notes = tmp_path / "500_model.pth"
    notes.write_text("these are my notes, not a model\n" * 20)
    result = run_app(
        ["models", "import-classifier", notes, "--output", tmp_path / "x.ckpt"]
    )
    assert result.returncode == 1
    assert f"error: {notes}: not a PyTorch file" in result.stderr
    assert "header claims" not in result.stderr
    result = run_app(
        ["models", "import-classifier", tmp_path / "missing.pth", "--chunk-size",
         "300", "--output", tmp_path / "y.ckpt"]
    )  # fmt: skip
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    unnamed = tmp_path / "model.pth"
    unnamed.write_bytes(b"")
    result = run_app(
        ["models", "import-classifier", unnamed, "--output", tmp_path / "z.ckpt"]
    )
    assert result.returncode == 1
    assert "pass --chunk-size 300 or 500" in result.stderr
