"""Finding and reading published fair-esm ESM-2 files, safely.

The published file (``esm2_t36_3B_UR50D.pt`` and its smaller siblings) is a
``torch.save`` dict ``{"model": state_dict, "cfg": {"model": Namespace(...)},
...}``. It is read with ``torch.load(weights_only=True)`` through
``ckptkit.legacy.safe_torch_load`` and an allowlist of exactly the globals such
files hold beyond plain tensors and containers: :data:`ESM2_SAFE_GLOBALS`
(found by experiment: torch names ``argparse.Namespace`` as the only unsupported
global of a file written in the published layout). A file that needs anything
else is refused with the global's name. The contact-regression file next to it
is not needed for embeddings and is never read.

A bare model name is looked up in the torch hub cache
(``torch.hub.get_dir()/checkpoints/<name>.pt``, where fair-esm itself puts it),
and downloaded there only when the machine is online and ``VIRNUCPRO_OFFLINE``
is not set.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virnucpro_app.errors import ModelLoadError
from virnucpro_app.identity import file_identity
from virnucpro_app.models.weights import check_state, read_torch_file

if TYPE_CHECKING:
    import torch

#: Globals a published ESM-2 file needs beyond torch's weights-only set.
ESM2_SAFE_GLOBALS = (argparse.Namespace,)

#: ESM-2 models published by fair-esm 2.0.0 (``esm/pretrained.py``).
KNOWN_ESM2_MODELS = (
    "esm2_t6_8M_UR50D",
    "esm2_t12_35M_UR50D",
    "esm2_t30_150M_UR50D",
    "esm2_t33_650M_UR50D",
    "esm2_t36_3B_UR50D",
    "esm2_t48_15B_UR50D",
)
#: Where fair-esm downloads model files from.
ESM_DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
#: Set (to anything but "" or "0") to never try a download.
OFFLINE_ENV = "VIRNUCPRO_OFFLINE"
#: Key in a demo file (top level) marking random weights.
DEMO_MARKER_KEY = "virnucpro_demo"

_PREFIX = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
# Not needed for embeddings: LM head, contact head, and RoPE's inv_freq buffer
# (recomputed, it is a constant of the head width).
_UNUSED = ("lm_head.", "contact_head.")
_UNUSED_SUFFIX = ".self_attn.rot_emb.inv_freq"
_DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class Esm2Config:
    """ESM-2 dimensions (from ``cfg["model"]`` of a fair-esm file).

    Attributes:
        num_layers: ``encoder_layers``.
        embed_dim: ``encoder_embed_dim``.
        num_heads: ``encoder_attention_heads``.
        token_dropout: ``token_dropout`` (True for every published ESM-2).
    """

    num_layers: int
    embed_dim: int
    num_heads: int
    token_dropout: bool = True

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor the trunk needs, by fair-esm name (prefixes stripped)."""
        dim, ffn = self.embed_dim, 4 * self.embed_dim
        shapes: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (33, dim)}
        for index in range(self.num_layers):
            p = f"layers.{index}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{p}self_attn.{proj}.weight"] = (dim, dim)
                shapes[f"{p}self_attn.{proj}.bias"] = (dim,)
            for norm in ("self_attn_layer_norm", "final_layer_norm"):
                shapes[f"{p}{norm}.weight"] = (dim,)
                shapes[f"{p}{norm}.bias"] = (dim,)
            shapes.update(
                {
                    f"{p}fc1.weight": (ffn, dim),
                    f"{p}fc1.bias": (ffn,),
                    f"{p}fc2.weight": (dim, ffn),
                    f"{p}fc2.bias": (dim,),
                }
            )
        shapes["emb_layer_norm_after.weight"] = (dim,)
        shapes["emb_layer_norm_after.bias"] = (dim,)
        return shapes


def _download(name: str, target: Path) -> None:
    url = ESM_DOWNLOAD_URL.format(name=name)
    print(f"downloading {url} to {target}", file=sys.stderr)  # noqa: T201
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        # The URL is a fixed https address built from a name in KNOWN_ESM2_MODELS.
        with (
            urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response,  # noqa: S310
            partial.open("wb") as handle,
        ):
            while chunk := response.read(8 << 20):
                handle.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def resolve_esm2_path(model: str | os.PathLike[str]) -> Path:
    """Turn ``--model`` into an existing ESM-2 file.

    Args:
        model: A path to a ``.pt`` file, or a name from :data:`KNOWN_ESM2_MODELS`.

    Raises:
        ModelLoadError: No such file, an unknown name, or a name that is neither
            in the torch hub cache nor downloadable (the message says where to
            put the file).
    """
    path = Path(model)
    if path.is_file():
        return path
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a folder; ESM-2 needs the fair-esm .pt file")
    name = os.fspath(model)
    if name not in KNOWN_ESM2_MODELS:
        raise ModelLoadError(
            f"{name}: no such file, and not a known ESM-2 model name "
            f"({', '.join(KNOWN_ESM2_MODELS)})"
        )
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / f"{name}.pt"
    if cached.is_file():
        return cached
    url = ESM_DOWNLOAD_URL.format(name=name)
    advice = (
        f"download {url} and put it at {cached} (the torch hub cache; set "
        "TORCH_HOME to move it), or pass --model /path/to/the/file.pt"
    )
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise ModelLoadError(
            f"{name}: not in the torch hub cache ({OFFLINE_ENV} set); {advice}"
        )
    try:
        _download(name, cached)
    except OSError as error:
        raise ModelLoadError(
            f"{name}: not in the torch hub cache and the download failed "
            f"({error}); {advice}"
        ) from error
    return cached


def esm_identity(model: str | os.PathLike[str]) -> str:
    """Content identity of an ESM-2 file (a name is looked up in the hub cache).

    Args:
        model: As for :func:`resolve_esm2_path`.

    Returns:
        ``"xxh3_128:..."`` of the file's bytes, as the encoder records it.

    Raises:
        ModelLoadError: As :func:`resolve_esm2_path`.
    """
    return file_identity(resolve_esm2_path(model))


def _config_from(data: dict[str, Any], path: Path) -> Esm2Config:
    cfg = data.get("cfg")
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if model_cfg is None:
        hint = " (an ESM-1 file: only ESM-2 is supported)" if "args" in data else ""
        raise ModelLoadError(
            f"{path}: no cfg['model'] in the file{hint}; not a fair-esm ESM-2 file"
        )
    try:
        config = Esm2Config(
            num_layers=int(model_cfg.encoder_layers),
            embed_dim=int(model_cfg.encoder_embed_dim),
            num_heads=int(model_cfg.encoder_attention_heads),
            token_dropout=bool(getattr(model_cfg, "token_dropout", True)),
        )
    except (AttributeError, TypeError, ValueError) as error:
        raise ModelLoadError(
            f"{path}: cfg['model'] lacks ESM-2 dimensions ({error})"
        ) from error
    if config.num_heads < 1 or config.embed_dim % config.num_heads:
        raise ModelLoadError(
            f"{path}: embed dim {config.embed_dim} is not a multiple of "
            f"{config.num_heads} heads"
        )
    return config


def read_esm2_file(path: Path) -> tuple[Esm2Config, dict[str, torch.Tensor], bool]:
    """Read and check a fair-esm ESM-2 file.

    Returns:
        ``(config, state, is_demo)``: the state has fair-esm's names without the
        ``encoder.sentence_encoder.`` / ``encoder.`` prefixes, only the tensors
        the trunk needs, every one checked for presence and shape.

    Raises:
        ModelLoadError: Damaged, unsafe, or not an ESM-2 file of consistent shape.
    """
    data = read_torch_file(
        path, extra_globals=ESM2_SAFE_GLOBALS, what="a fair-esm ESM-2 file"
    )
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelLoadError(
            f"{path}: no 'model' state dict; not a fair-esm ESM-2 file"
        )
    config = _config_from(data, path)
    state = {
        _PREFIX.sub("", name): tensor
        for name, tensor in data["model"].items()
        if not name.endswith(_UNUSED_SUFFIX)
    }
    needed = check_state(
        state,
        config.expected_shapes(),
        path=path,
        what=f"ESM-2 with {config.num_layers} layers x {config.embed_dim}",
        ignored_prefixes=_UNUSED,
    )
    return config, needed, DEMO_MARKER_KEY in data


def esm_width(model: str | os.PathLike[str]) -> int:
    """Embedding width of an ESM-2 file (``encoder_embed_dim``), weights unread.

    Args:
        model: As for :func:`resolve_esm2_path`.

    Raises:
        ModelLoadError: As :func:`resolve_esm2_path`, or not an ESM-2 file.
    """
    path = Path(model)
    if not path.exists() and os.fspath(model) not in KNOWN_ESM2_MODELS:
        raise ModelLoadError(f"{path} does not exist")
    path = resolve_esm2_path(model)
    data = read_torch_file(
        path, extra_globals=ESM2_SAFE_GLOBALS, what="a fair-esm ESM-2 file"
    )
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: not a fair-esm ESM-2 file")
    return _config_from(data, path).embed_dim
