"""A folder of checkpoints in every state: valid, damaged, legacy, newer, not one.

``build_zoo(folder)`` writes the files and returns what each one should be
reported as, so tests of folder validation (library and CLI) share one truth.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

import ckptkit
from ckptkit._file.format import temp_name

from .corrupt import flip_bit, flip_tensor_bit, make_future_version, truncate

if TYPE_CHECKING:
    from pathlib import Path

#: A pid no live process has (above Linux's pid_max limit of 2**22).
DEAD_PID = 2**22 + 12345


class NotAllowlisted:
    """A class a weights-only unpickler refuses: its pickle is never run."""

    def __init__(self) -> None:
        self.value = 1


@dataclass(frozen=True)
class Zoo:
    """What ``build_zoo`` wrote, by expected verdict (paths relative to the folder)."""

    valid: tuple[str, ...]
    corrupted: tuple[str, ...]
    incompatible: tuple[str, ...]
    not_checkpoints: tuple[str, ...]
    temporary: tuple[str, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        """Every checkpoint that must fail validation."""
        return self.corrupted + self.incompatible


def _state(seed: int) -> dict[str, object]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "model": {"w": torch.randn(32, 32, generator=generator), "b": torch.zeros(32)},
        "step": seed,
    }


def build_zoo(folder: Path) -> Zoo:
    """Write one file of each kind into ``folder`` (created) and say what they are."""
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    valid = _write_valid(folder)
    corrupted = _write_corrupted(folder)
    incompatible = _write_incompatible(folder)
    (folder / "notes.txt").write_text("step 10 | loss 0.3\n", encoding="utf-8")
    (folder / "sub" / "config.json").write_text(json.dumps({"lr": 0.1}))
    with zipfile.ZipFile(folder / "archive.zip", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    (folder / "empty.txt").write_bytes(b"")
    temporary = temp_name("good.ckpt", "0123456789ab", DEAD_PID)
    # What a killed writer leaves: a whole file under a temporary name (save
    # itself refuses such names).
    ckptkit.save(folder / "sub" / "killed.ckpt", _state(99))
    (folder / "sub" / "killed.ckpt").rename(folder / "sub" / temporary)
    return Zoo(
        valid=valid,
        corrupted=corrupted,
        incompatible=incompatible,
        not_checkpoints=("archive.zip", "empty.txt", "notes.txt", "sub/config.json"),
        temporary=(f"sub/{temporary}",),
    )


def _write_valid(folder: Path) -> tuple[str, ...]:
    ckptkit.save(folder / "good.ckpt", _state(1), schema="zoo")
    ckptkit.save(
        folder / "sub" / "deeper" / "step-2.ckpt", _state(2), status="in_progress"
    )
    # Names say nothing: content decides.
    ckptkit.save(folder / "weights.dat", _state(3))
    torch.save(_state(4), folder / "legacy.pt")
    torch.save(_state(5), folder / "legacy_noext")
    torch.save(
        _state(6), folder / "legacy_old.pth", _use_new_zipfile_serialization=False
    )
    save_file({"w": torch.ones(8)}, str(folder / "plain.safetensors"))
    return (
        "good.ckpt",
        "legacy.pt",
        "legacy_noext",
        "legacy_old.pth",
        "plain.safetensors",
        "sub/deeper/step-2.ckpt",
        "weights.dat",
    )


def _write_corrupted(folder: Path) -> tuple[str, ...]:
    for name in ("flipped.ckpt", "truncated.ckpt", "damaged_start.ckpt", "empty.ckpt"):
        ckptkit.save(folder / name, _state(7))
    flip_tensor_bit(folder / "flipped.ckpt")
    truncate(folder / "truncated.ckpt", (folder / "truncated.ckpt").stat().st_size // 2)
    flip_bit(folder / "damaged_start.ckpt", 8 * 8 + 1)  # the header's opening brace
    truncate(folder / "empty.ckpt", 0)
    return ("damaged_start.ckpt", "empty.ckpt", "flipped.ckpt", "truncated.ckpt")


def _write_incompatible(folder: Path) -> tuple[str, ...]:
    ckptkit.save(folder / "future.ckpt", _state(8))
    make_future_version(folder / "future.ckpt")
    torch.save({"obj": NotAllowlisted()}, folder / "unsafe.pt")
    return ("future.ckpt", "unsafe.pt")
