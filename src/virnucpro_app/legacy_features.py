"""Feature files of the original VirNucPro and its GPU refactor, read safely.

Per file of 10,000 frames the original writes ``output_N_DNABERT_S.pt``
(``{'nucleotide': [ids], 'data': [{'label', 'mean_representation': [768
floats]}]}``) and ``output_N_ESM.pt`` (``{'proteins': [ids], 'data':
[Tensor(2560)]}``), then ``output_N_merged.pt`` (``{'ids': [ids], 'data':
Tensor[N, 3328]}``); its refactor (legacy 0.x) adds ``version`` and ``status``.
They are pickles: :func:`read_legacy_features` loads them only through
ckptkit's safe loader (``weights_only=True``, no extra global allowed) and
never writes them; any departure from these layouts is a
:class:`LegacyFileError` that says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

import ckptkit
from ckptkit.legacy import safe_torch_load
from virnucpro_app.errors import InputError
from virnucpro_app.identity import file_identity

if TYPE_CHECKING:
    from pathlib import Path

#: ``output_N_DNABERT_S.pt``, ``output_N_ESM.pt``, ``output_N_merged.pt``.
LEGACY_NAME = re.compile(r"^output_(\d+)_(DNABERT_S|ESM|merged)\.pt$")
_KINDS = {"DNABERT_S": "dnabert", "ESM": "esm", "merged": "merged"}
_ORDER = {"dnabert": 0, "esm": 1, "merged": 2}
DAMAGED = "damaged file"
WRONG_WIDTH = "wrong width"


@dataclass(frozen=True)
class LegacyFile:
    """One legacy feature file found under ``--adopt``.

    Attributes:
        name: Its path relative to the ``--adopt`` folder.
        kind: ``dnabert``, ``esm`` or ``merged``.
        identity: Its content hash (goes into the run manifest).
    """

    path: Path
    name: str
    kind: str
    identity: str


def find_legacy_files(folder: Path) -> tuple[LegacyFile, ...]:
    """Every legacy feature file under ``folder``, in the original's file order.

    Raises:
        InputError: The folder does not exist or holds no such file.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"--adopt {folder} {what}")
    found = []
    for path in folder.rglob("output_*.pt"):
        match = LEGACY_NAME.match(path.name)
        if match and path.is_file():
            kind = _KINDS[match.group(2)]
            key = (int(match.group(1)), _ORDER[kind], path.as_posix())
            found.append((key, path, kind))
    if not found:
        raise InputError(
            f"--adopt {folder}: no legacy feature files (output_N_DNABERT_S.pt, "
            "output_N_ESM.pt, output_N_merged.pt) found in it"
        )
    return tuple(
        LegacyFile(path, path.relative_to(folder).as_posix(), kind, file_identity(path))
        for _, path, kind in sorted(found)
    )


class LegacyFileError(Exception):
    """A legacy file that cannot be adopted at all; the message says why."""


def _damaged(reason: str) -> LegacyFileError:
    return LegacyFileError(f"{DAMAGED}: {reason}")


def _first_word(label: object) -> str:
    return (str(label).split() or [""])[0]


def _rows(data: object, width_of: str) -> torch.Tensor:
    try:
        if isinstance(data, torch.Tensor):
            return data.to(torch.float32).reshape(len(data), -1)
        return torch.stack(
            [torch.as_tensor(item, dtype=torch.float32).reshape(-1) for item in data]  # type: ignore[attr-defined]
        )
    except (TypeError, RuntimeError, ValueError) as error:
        raise _damaged(f"its {width_of} rows are not numbers of one width") from error


def _parse(kind: str, payload: object) -> tuple[list[str], torch.Tensor]:
    """IDs and feature rows of a legacy payload (refused when not the format)."""
    if not isinstance(payload, dict):
        raise _damaged(f"not a legacy feature file ({type(payload).__name__})")
    status = payload.get("status")
    if status is not None and status != "complete":
        raise _damaged(f"status {status!r}: the file was never finished")
    try:
        if kind == "dnabert":
            data = payload["data"]
            ids = [_first_word(item["label"]) for item in data]
            rows = _rows([item["mean_representation"] for item in data], "DNABERT-S")
        else:
            key, what = ("proteins", "ESM-2") if kind == "esm" else ("ids", "merged")
            ids = [_first_word(label) for label in payload[key]]
            rows = _rows(payload["data"], what)
    except (KeyError, TypeError) as error:
        raise _damaged(f"not the legacy {kind} layout (no {error})") from error
    if len(ids) != len(rows):
        raise _damaged(f"{len(ids)} IDs but {len(rows)} feature rows")
    return ids, rows


def read_legacy_features(legacy: LegacyFile) -> tuple[list[str], torch.Tensor]:
    """The frame IDs and feature rows (float32 ``[N, D]``) of a legacy file.

    Raises:
        LegacyFileError: The file is damaged, unsafe, or not the legacy layout.
    """
    try:
        payload = safe_torch_load(legacy.path)
    except ckptkit.CheckpointError as error:
        raise LegacyFileError(f"{DAMAGED}: {error.reason}") from error
    return _parse(legacy.kind, payload)
