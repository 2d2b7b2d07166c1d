"""Valid files to mutate: ckptkit checkpoints of varied states, legacy files.

Checkpoints are written in today's container format, plus one golden file of
format 1 (its tree in the JSON header), which ckptkit still reads.
"""

from __future__ import annotations

import io
import tempfile
from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

import ckptkit

from ..fixtures.ckptkit import golden_states

#: A file of container format 1, written by ckptkit 0.1.0 (never rewritten).
FORMAT_1_FILE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "ckptkit"
    / "format-1"
    / "v1.0-in-progress.ckpt"
)
FORMAT_1 = "format-1"


def states() -> dict[str, Any]:
    """States that reach every kind of header entry the writer makes."""
    base = torch.arange(24, dtype=torch.float32)
    return {
        "plain": {"w": torch.arange(12.0).reshape(3, 4), "b": torch.ones(4), "n": 3},
        # Views of one storage: a blob entry with per-leaf views (offset, strides).
        "views": {"all": base, "t": base.view(4, 6).t(), "tail": base[5:17:3]},
        "mixed": OrderedDict(
            step=10,
            lr=1e-3,
            name="run",
            raw=b"\x00\x01",
            flags=[True, None, (1, 2.5)],
            dtype=torch.float16,
            size=torch.Size([2, 3]),
            arr=np.arange(6, dtype=np.int32).reshape(2, 3),
            c=torch.complex(
                torch.ones(3, dtype=torch.float64), torch.zeros(3).double()
            ),
            half=torch.ones(5, dtype=torch.bfloat16),
            empty=torch.empty(0, 3),
            nested={"deep": {"er": [torch.zeros(2, dtype=torch.int64)]}},
        ),
        FORMAT_1: golden_states.state_in_progress(),
    }


@cache
def ckptkit_seeds() -> dict[str, bytes]:
    """Each state saved by ckptkit (bytes), by name."""
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, state in states().items():
            if name == FORMAT_1:
                found[name] = FORMAT_1_FILE.read_bytes()
                continue
            path = Path(folder) / f"{name}.ckpt"
            ckptkit.save(path, state, schema="fuzz", metadata={"seed": name})
            found[name] = path.read_bytes()
    return found


@cache
def legacy_seeds() -> dict[str, bytes]:
    """A torch.save zip, an old-format (non-zip) torch.save, plain safetensors."""
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3), "step": 4}
    found: dict[str, bytes] = {}
    for name, zipped in (("torch-zip", True), ("torch-old", False)):
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=zipped)
        found[name] = buffer.getvalue()
    found["safetensors"] = safetensors_bytes(
        {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3)}
    )
    return found
