"""Device and precision choice, decided on the machine's facts (no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from virnucpro_app.device import (
    DevicePlan,
    Hardware,
    Precision,
    plan_device,
    probe_hardware,
    torch_dtype,
)
from virnucpro_app.errors import PipelineError

NO_GPU = Hardware(cuda_available=False)
GPU = Hardware(cuda_available=True, cuda_device_count=2, bf16_supported=True)
OLD_GPU = Hardware(cuda_available=True, cuda_device_count=1, bf16_supported=False)


def test_auto_falls_back_to_cpu_fp32_without_cuda_and_says_so() -> None:
    plan = plan_device("auto", "auto", NO_GPU)
    assert plan == DevicePlan("cpu", Precision.FP32, plan.note)
    assert plan.note is not None
    assert "no CUDA" in plan.note


def test_auto_picks_first_gpu_in_bf16() -> None:
    plan = plan_device("auto", "auto", GPU)
    assert (plan.device, plan.precision, plan.note) == ("cuda:0", Precision.BF16, None)
    assert plan.is_cuda


def test_auto_precision_is_fp16_on_a_gpu_without_bf16() -> None:
    plan = plan_device("cuda", "auto", OLD_GPU)
    assert plan.precision is Precision.FP16
    assert plan.note is not None


@pytest.mark.parametrize(
    ("request_", "device"), [("cuda", "cuda:0"), ("cuda:1", "cuda:1"), ("CPU", "cpu")]
)
def test_explicit_devices_resolve(request_: str, device: str) -> None:
    assert plan_device(request_, "fp32", GPU).device == device


@pytest.mark.parametrize(
    ("device", "hardware", "needle"),
    [
        ("cuda", NO_GPU, "no CUDA device"),
        ("cuda:2", GPU, "only 2 CUDA"),
        ("tpu", GPU, "not a device"),
    ],
)
def test_unusable_device_is_an_error_not_a_silent_fallback(
    device: str, hardware: Hardware, needle: str
) -> None:
    with pytest.raises(PipelineError, match=needle):
        plan_device(device, "auto", hardware)


def test_bf16_on_a_gpu_without_it_is_refused() -> None:
    with pytest.raises(PipelineError, match="bfloat16"):
        plan_device("cuda", "bf16", OLD_GPU)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(PipelineError, match="fp8"):
        plan_device("cpu", "fp8", NO_GPU)


def test_explicit_cpu_precisions_are_kept() -> None:
    assert plan_device("cpu", "bf16", NO_GPU).precision is Precision.BF16


def test_torch_dtype_maps_resolved_precisions_only() -> None:
    assert torch_dtype(Precision.BF16) is torch.bfloat16
    assert torch_dtype(Precision.FP16) is torch.float16
    assert torch_dtype(Precision.FP32) is torch.float32
    with pytest.raises(ValueError, match="auto"):
        torch_dtype(Precision.AUTO)


@pytest.mark.parametrize(
    ("capability", "precision"),
    [((7, 0), Precision.FP16), ((7, 5), Precision.FP16), ((8, 0), Precision.BF16)],
)
def test_probe_counts_only_hardware_bf16(
    monkeypatch: pytest.MonkeyPatch,
    capability: tuple[int, int],
    precision: Precision,
) -> None:
    """torch.cuda.is_bf16_supported() is True on a V100/T4 too (emulated bf16).

    Emulated bfloat16 is far slower than fp16 on those GPUs, so ``auto`` must
    take fp16 there: the probe reads the compute capability (a GPU faked here).
    """
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: capability)
    # torch's answer with its default including_emulation=True on any of them
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda **_: True)
    hardware = probe_hardware()
    assert hardware.bf16_supported is (precision is Precision.BF16)
    assert plan_device("auto", "auto", hardware).precision is precision
