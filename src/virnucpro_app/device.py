"""Device and precision choice: pure functions over the machine's facts.

The decisions (which device, which dtype, when CUDA falls back to the CPU) take a
:class:`Hardware` record instead of asking torch themselves, so every branch is
tested on a machine without a GPU. :func:`probe_hardware` is the one place that
asks torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from virnucpro_app.errors import PipelineError

if TYPE_CHECKING:
    import torch

_CUDA_DEVICE = re.compile(r"^cuda(?::(\d+))?$")
# NVIDIA GPUs compute bfloat16 in hardware from compute capability 8.0 (Ampere).
_BF16_MIN_MAJOR = 8


class Precision(StrEnum):
    """Compute precision of the language models (stored embeddings are float32)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass(frozen=True)
class Hardware:
    """What the machine offers, as far as device choice cares.

    Attributes:
        cuda_available: ``torch.cuda.is_available()``.
        cuda_device_count: Number of visible CUDA devices.
        bf16_supported: Whether the CUDA device computes bfloat16 in hardware
            (compute capability 8.0 or newer, or a ROCm GPU); emulated bfloat16
            does not count.
    """

    cuda_available: bool
    cuda_device_count: int = 0
    bf16_supported: bool = False


@dataclass(frozen=True)
class DevicePlan:
    """A resolved device and precision.

    Attributes:
        device: ``"cpu"`` or ``"cuda:N"``.
        precision: The compute precision, never ``auto``.
        note: Why the choice differs from a literal reading of the request
            (for example ``auto`` finding no GPU), or ``None``.
    """

    device: str
    precision: Precision
    note: str | None = None

    @property
    def is_cuda(self) -> bool:
        """Whether the plan runs on a CUDA device."""
        return self.device.startswith("cuda")


def probe_hardware() -> Hardware:
    """Ask torch what this machine offers."""
    import torch

    if not torch.cuda.is_available():
        return Hardware(cuda_available=False)
    # Not torch.cuda.is_bf16_supported(): by default it also says True where
    # bfloat16 is only emulated (NVIDIA before compute capability 8.0: V100, T4),
    # much slower there than fp16 on the tensor cores.
    major, _ = torch.cuda.get_device_capability()
    return Hardware(
        cuda_available=True,
        cuda_device_count=torch.cuda.device_count(),
        bf16_supported=bool(torch.version.hip) or major >= _BF16_MIN_MAJOR,
    )


def choose_device(requested: str, hardware: Hardware) -> tuple[str, str | None]:
    """Resolve ``auto|cpu|cuda|cuda:N`` to a concrete device.

    ``auto`` takes the first GPU when there is one and the CPU otherwise (and says
    so in the note). An explicit ``cuda`` request on a machine without CUDA is an
    error, not a silent fallback: the user asked for a GPU.

    Returns:
        The device string and a note explaining a fallback (or ``None``).

    Raises:
        PipelineError: The value is not a device name, or names a GPU that is
            not there.
    """
    value = requested.strip().lower()
    if value == "auto":
        if hardware.cuda_available and hardware.cuda_device_count > 0:
            return "cuda:0", None
        return "cpu", "no CUDA device found; running on the CPU"
    if value == "cpu":
        return "cpu", None
    match = _CUDA_DEVICE.match(value)
    if match is None:
        raise PipelineError(
            f"--device {requested!r} is not a device: use auto, cpu, cuda or cuda:N"
        )
    index = int(match.group(1) or 0)
    if not hardware.cuda_available:
        raise PipelineError(
            f"--device {requested} asked for a GPU but torch sees no CUDA device; "
            "use --device cpu (or auto) or install a CUDA build of torch"
        )
    if index >= hardware.cuda_device_count:
        raise PipelineError(
            f"--device {requested}: only {hardware.cuda_device_count} CUDA "
            f"device(s) visible (cuda:0 to cuda:{hardware.cuda_device_count - 1})"
        )
    return f"cuda:{index}", None


def choose_precision(
    requested: str | Precision, device: str, hardware: Hardware
) -> tuple[Precision, str | None]:
    """Resolve ``--precision`` for a device.

    ``auto`` is bf16 on a GPU with bf16 hardware, fp16 on an older GPU and fp32 on
    the CPU (where bf16/fp16 matmuls are slower than fp32 on most machines).

    Returns:
        The precision and a note (or ``None``).

    Raises:
        PipelineError: Unknown value, or bf16 asked of a GPU without bf16.
    """
    try:
        precision = Precision(str(requested).strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise PipelineError(
            f"--precision {requested!r} is not one of {choices}"
        ) from None
    on_cuda = device.startswith("cuda")
    if precision is Precision.AUTO:
        if not on_cuda:
            return Precision.FP32, None
        if hardware.bf16_supported:
            return Precision.BF16, None
        return Precision.FP16, "this GPU has no bfloat16; using fp16"
    if precision is Precision.BF16 and on_cuda and not hardware.bf16_supported:
        raise PipelineError(
            f"--precision bf16: {device} does not support bfloat16; use fp16 or fp32"
        )
    return precision, None


def plan_device(
    device: str = "auto",
    precision: str | Precision = Precision.AUTO,
    hardware: Hardware | None = None,
) -> DevicePlan:
    """Resolve ``--device`` and ``--precision`` together.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        hardware: The machine's facts; probed from torch when ``None``.

    Raises:
        PipelineError: See :func:`choose_device` and :func:`choose_precision`.

    Example:
        >>> plan_device("auto", "auto", Hardware(cuda_available=False)).device
        'cpu'
    """
    facts = probe_hardware() if hardware is None else hardware
    resolved_device, device_note = choose_device(device, facts)
    resolved_precision, precision_note = choose_precision(
        precision, resolved_device, facts
    )
    notes = [n for n in (device_note, precision_note) if n]
    return DevicePlan(
        resolved_device, resolved_precision, "; ".join(notes) if notes else None
    )


def torch_dtype(precision: Precision) -> torch.dtype:
    """Map a resolved precision to its torch dtype.

    Raises:
        ValueError: ``auto`` was not resolved first.
    """
    import torch

    table = {
        Precision.FP32: torch.float32,
        Precision.BF16: torch.bfloat16,
        Precision.FP16: torch.float16,
    }
    if precision not in table:
        msg = "resolve 'auto' with plan_device() before asking for a dtype"
        raise ValueError(msg)
    return table[precision]
