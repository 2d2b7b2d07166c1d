"""Reading a DNABERT-S folder (Hugging Face layout) without transformers.

Expected files: ``config.json``; weights as ``model.safetensors`` or
``pytorch_model.bin`` (a plain tensor dict, read with ``weights_only=True`` and
no extra globals); ``tokenizer.json`` (loaded with the ``tokenizers`` library).
No ``trust_remote_code``: the architecture is ours (``models.dnabert``).

Key layouts accepted: the bare ``BertModel`` names (``embeddings.…``,
``encoder.layer.N.…``) and the same under a ``bert.`` prefix (DNABERT-2
masked-LM checkpoints); ``cls.*`` (MLM head) and ``pooler.*`` are ignored; old
BERT ``LayerNorm.gamma/beta`` names are read as ``weight/bias``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virnucpro_app.errors import ModelLoadError
from virnucpro_app.identity import files_identity
from virnucpro_app.models.weights import check_state, read_safetensors, read_torch_file

if TYPE_CHECKING:
    import os

    import torch
    from tokenizers import Tokenizer

#: Weight file names, in order of preference.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
#: Key in config.json marking a demo model.
DEMO_MARKER_KEY = "virnucpro_demo"

_IGNORED = ("cls.", "pooler.")


@dataclass(frozen=True)
class DnabertConfig:
    """DNABERT-S dimensions (from ``config.json``).

    Attributes:
        vocab_size: Embedding rows.
        num_layers: ``num_hidden_layers``.
        num_heads: ``num_attention_heads``.
        intermediate_size: GLU width (``gated_layers`` has twice as many rows).
        layer_norm_eps: LayerNorm epsilon (1e-12 in DNABERT-S).
        type_vocab_size: Token type rows (only row 0 is used).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 2

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor the encoder needs, by published name (no prefix)."""
        h, inner = self.hidden_size, self.intermediate_size
        shapes: dict[str, tuple[int, ...]] = {
            "embeddings.word_embeddings.weight": (self.vocab_size, h),
            "embeddings.token_type_embeddings.weight": (self.type_vocab_size, h),
            "embeddings.LayerNorm.weight": (h,),
            "embeddings.LayerNorm.bias": (h,),
        }
        for index in range(self.num_layers):
            p = f"encoder.layer.{index}."
            shapes.update(
                {
                    f"{p}attention.self.Wqkv.weight": (3 * h, h),
                    f"{p}attention.self.Wqkv.bias": (3 * h,),
                    f"{p}attention.output.dense.weight": (h, h),
                    f"{p}attention.output.dense.bias": (h,),
                    f"{p}attention.output.LayerNorm.weight": (h,),
                    f"{p}attention.output.LayerNorm.bias": (h,),
                    f"{p}mlp.gated_layers.weight": (2 * inner, h),
                    f"{p}mlp.wo.weight": (h, inner),
                    f"{p}mlp.wo.bias": (h,),
                    f"{p}mlp.layernorm.weight": (h,),
                    f"{p}mlp.layernorm.bias": (h,),
                }
            )
        return shapes


@dataclass(frozen=True)
class DnabertFiles:
    """What a DNABERT-S folder holds, read and checked.

    Attributes:
        state: Weights by published name (prefix stripped, heads dropped).
        tokenizer: The fast tokenizer (padding and truncation off).
        weights_file: Name of the weights file used.
        is_demo: Whether the folder is a random-weight demo.
    """

    folder: Path
    config: DnabertConfig
    state: dict[str, torch.Tensor]
    tokenizer: Tokenizer
    weights_file: str
    is_demo: bool

    @property
    def identity(self) -> str:
        """Content identity of the files that decide the output (as the manifest's)."""
        return _identity(self.folder, self.weights_file)


def _identity(folder: Path, weights_file: str) -> str:
    return files_identity(folder, [CONFIG_FILE, weights_file, TOKENIZER_FILE])


def dnabert_identity(folder: str | os.PathLike[str]) -> str:
    """Content identity of a DNABERT-S folder, without loading it.

    Returns:
        ``"xxh3_128:..."`` of its config, weights and tokenizer (name, size, bytes).

    Raises:
        ModelLoadError: The folder lacks its config or weights.
    """
    root = Path(folder)
    weights = next((n for n in WEIGHT_FILES if (root / n).is_file()), None)
    if weights is None or not (root / CONFIG_FILE).is_file():
        raise ModelLoadError(
            f"{root}: not a DNABERT-S folder (needs {CONFIG_FILE}, "
            f"{' or '.join(WEIGHT_FILES)} and {TOKENIZER_FILE})"
        )
    return _identity(root, weights)


def _read_config(folder: Path) -> tuple[DnabertConfig, dict[str, Any]]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"{folder}: no {CONFIG_FILE}; expected a DNABERT-S folder with "
            f"{CONFIG_FILE}, {' or '.join(WEIGHT_FILES)} and {TOKENIZER_FILE}"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        config = DnabertConfig(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{path}: not a usable BERT config ({error!r})") from error
    if config.num_heads < 1 or config.hidden_size % config.num_heads:
        raise ModelLoadError(
            f"{path}: hidden_size {config.hidden_size} is not a multiple of "
            f"num_attention_heads {config.num_heads}"
        )
    return config, raw


def _normalise_name(name: str) -> str:
    name = name.removeprefix("bert.")
    if name.endswith(".gamma"):
        return name.removesuffix(".gamma") + ".weight"
    if name.endswith(".beta"):
        return name.removesuffix(".beta") + ".bias"
    return name


def _read_weights(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        what = "DNABERT-S weights"
        if name.endswith(".safetensors"):
            state = read_safetensors(path, what=what)
        else:
            state = read_torch_file(path, what=what)
        if not isinstance(state, dict):
            raise ModelLoadError(f"{path}: not a tensor dict")
        return {_normalise_name(str(k)): v for k, v in state.items()}, name
    raise ModelLoadError(f"{folder}: no weights file ({' or '.join(WEIGHT_FILES)})")


def _read_tokenizer(folder: Path, config: DnabertConfig) -> Tokenizer:
    from tokenizers import Tokenizer

    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"{folder}: no {TOKENIZER_FILE}; copy the tokenizer.json that comes "
            "with the model into this folder"
        )
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises plain Exception on bad JSON
        raise ModelLoadError(f"{path}: not a tokenizers file ({error})") from error
    tokenizer.no_padding()
    tokenizer.no_truncation()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ModelLoadError(f"{path}: no [CLS] or [SEP] token")
    probe = tokenizer.encode("ACGT").ids
    if not probe or probe[0] != cls_id or probe[-1] != sep_id:
        raise ModelLoadError(f"{path}: does not wrap sequences as [CLS] ... [SEP]")
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > config.vocab_size:
        raise ModelLoadError(
            f"{path}: {size} tokens but the model has {config.vocab_size} embeddings"
        )
    return tokenizer


def read_dnabert_folder(folder: Path) -> DnabertFiles:
    """Read and check a DNABERT-S folder.

    Raises:
        ModelLoadError: A missing or damaged file, or weights that do not match
            the config (the message names every missing key and wrong shape).
    """
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: not a folder; DNABERT-S is a model folder")
    config, raw = _read_config(folder)
    state, weights_file = _read_weights(folder)
    needed = check_state(
        state,
        config.expected_shapes(),
        path=folder / weights_file,
        what=(
            f"DNABERT-S with {config.num_layers} layers x {config.hidden_size} "
            f"(from {CONFIG_FILE})"
        ),
        ignored_prefixes=_IGNORED,
    )
    return DnabertFiles(
        folder=folder,
        config=config,
        state=needed,
        tokenizer=_read_tokenizer(folder, config),
        weights_file=weights_file,
        is_demo=DEMO_MARKER_KEY in raw,
    )


def dnabert_width(folder: str | os.PathLike[str]) -> int:
    """Embedding width of a DNABERT-S folder (``hidden_size``), weights unread.

    Raises:
        ModelLoadError: The folder does not exist, or lacks its config, weights
            or tokenizer, or the config is not usable.
    """
    root = Path(folder)
    if not root.exists():
        raise ModelLoadError(f"{root} does not exist")
    if not root.is_dir():
        raise ModelLoadError(f"{root}: not a folder; DNABERT-S is a model folder")
    dnabert_identity(root)  # config and weights present
    if not (root / TOKENIZER_FILE).is_file():
        raise ModelLoadError(
            f"{root}: no {TOKENIZER_FILE}; copy the tokenizer.json that comes "
            "with the model into this folder"
        )
    return _read_config(root)[0].hidden_size
