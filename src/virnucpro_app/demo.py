"""The demo models: random weights in the real formats, and the bundled sample.

``virnucpro-app models make-demo DIR`` writes them (:func:`make_demo_models`) so
that tests, the README demo and users without the real weights exercise the real
loading code:

- ``DIR/esm2_t2_demo.pt`` (+ ``-contact-regression.pt``): a 2-layer ESM-2 in the
  published fair-esm layout;
- ``DIR/dnabert-s-demo/``: a DNABERT-S style Hugging Face folder;
- ``DIR/classifier-300bp-demo.ckpt`` and ``DIR/classifier-500bp-demo.ckpt``:
  random-weight classifiers that fit the two demo encoders.

The encoder files come from :mod:`virnucpro_app.models.demo_weights`. Every demo
file carries a ``virnucpro_demo`` marker and loading one warns that its outputs
are NOT BIOLOGY. ``--demo`` uses them through :func:`demo_models` (built once in
a cache folder), with :func:`bundled_sample` as the input when none is given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from virnucpro_app.config import ModelPaths
from virnucpro_app.models.demo_weights import (
    DEMO_MARKER,
    write_dnabert_folder,
    write_esm2_file,
)

if TYPE_CHECKING:
    import os

LOG = logging.getLogger("virnucpro_app")
#: The sample FASTA shipped in the package's ``data/`` folder.
SAMPLE_FASTA = "sample.fasta"
#: Written last into a demo cache folder: its models are complete.
COMPLETE_MARKER = ".complete"
#: File and folder names inside a demo directory.
ESM_DEMO_NAME = "esm2_t2_demo.pt"
DEMO_CLASSIFIER_NAME = "classifier-{size}bp-demo.ckpt"
#: Width of the demo ESM-2 (the classifier's input is DNABERT width + this).
ESM_DEMO_WIDTH = 64
DNABERT_DEMO_DIR = "dnabert-s-demo"


@dataclass(frozen=True)
class DemoModels:
    """Paths of the demo encoders written by :func:`make_demo_models`.

    Attributes:
        dnabert_dir: The DNABERT-S style folder.
        esm_path: The fair-esm ESM-2 ``.pt`` file.
    """

    dnabert_dir: Path
    esm_path: Path


def make_demo_models(directory: str | os.PathLike[str], *, seed: int = 0) -> DemoModels:
    """Write every demo model into ``directory``.

    Args:
        directory: Target folder (created).
        seed: Random seed (the same seed gives identical weights).

    Example:
        >>> import tempfile
        >>> demo = make_demo_models(tempfile.mkdtemp())
        >>> demo.esm_path.name
        'esm2_t2_demo.pt'
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    dnabert_dir = write_dnabert_folder(root / DNABERT_DEMO_DIR, seed=seed)
    esm_path = write_esm2_file(
        root / ESM_DEMO_NAME, embed_dim=ESM_DEMO_WIDTH, seed=seed
    )
    config = json.loads((dnabert_dir / "config.json").read_text())
    input_dim = int(config["hidden_size"]) + ESM_DEMO_WIDTH
    for size in (300, 500):
        write_demo_classifier(
            root / DEMO_CLASSIFIER_NAME.format(size=size),
            input_dim=input_dim,
            chunk_size=size,
            seed=seed,
        )
    return DemoModels(dnabert_dir=dnabert_dir, esm_path=esm_path)


def write_demo_classifier(
    path: str | os.PathLike[str], *, input_dim: int, chunk_size: int, seed: int = 0
) -> Path:
    """Write a random-weight VirNucPro classifier checkpoint (NOT biology).

    Args:
        path: Target file.
        input_dim: DNABERT-S width + ESM-2 width of the demo models.
        chunk_size: The chunk size it claims to be trained for.
        seed: Random seed.
    """
    from virnucpro_app.models.classifier import MLPClassifier, save_classifier

    torch.manual_seed(seed + chunk_size)
    model = MLPClassifier(input_dim)
    save_classifier(
        path, model, chunk_size=chunk_size, metadata={"virnucpro_demo": DEMO_MARKER}
    )
    return Path(path)


def demo_models(cache_dir: Path, model_type: int) -> ModelPaths:
    """The demo models, built in ``cache_dir`` on first use.

    Args:
        cache_dir: The demo model cache (``--demo``'s folder).
        model_type: Chunk size; picks the demo classifier.

    Returns:
        Their paths, marked as demo models.
    """
    marker = cache_dir / COMPLETE_MARKER
    if not marker.exists():
        LOG.info("building demo models in %s (random weights: NOT biology)", cache_dir)
        make_demo_models(cache_dir)
        marker.write_text("demo models complete\n")
    return ModelPaths(
        dnabert=str(cache_dir / DNABERT_DEMO_DIR),
        esm=str(cache_dir / ESM_DEMO_NAME),
        classifier=str(cache_dir / DEMO_CLASSIFIER_NAME.format(size=model_type)),
        demo=True,
    )


def bundled_sample() -> Path:
    """The sample FASTA shipped with the package (coding-rich demo contigs)."""
    resource = files("virnucpro_app") / "data" / SAMPLE_FASTA
    with as_file(resource) as path:
        return Path(path)
