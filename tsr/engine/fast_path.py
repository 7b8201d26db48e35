"""The fast path, one place for the trainer and `tsr bench`: mixed precision, memory format and backend flags.

What each setting gains is measured by `tsr bench` (fast path vs fp32 eager, in the same run). bf16 autocast on a CPU without native bf16 is emulated and slower, hence the capability check.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from tsr.config import ConfigError


def cpu_has_fast_bf16() -> bool:
    """oneDNN runs bf16 natively here (AVX512-BF16 / AMX), not by emulation."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(setting: str, device: torch.device) -> Optional[torch.dtype]:
    """train.amp (auto | off | bf16 | fp16) -> the autocast dtype on `device`, None for fp32.

    auto: CUDA -> bf16 where supported, else fp16 (with a GradScaler); CPU -> bf16 where the CPU has native bf16,
    else fp32."""
    if device.type != "cuda":
        if setting == "fp16":
            raise ConfigError("train.amp=fp16 needs CUDA; on CPU use train.amp=off or bf16")
        if setting == "auto":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        return torch.bfloat16 if setting == "bf16" else None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def configure_backends(device: torch.device) -> None:
    """cuDNN picks the fastest convolution algorithms for the (fixed) TextZoom sizes once, then reuses them."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def to_device(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move `model` to `device`; convolution weights in NHWC when `channels_last` (oneDNN and cuDNN run NHWC
    convolutions faster; TSRN's GRUs permute their input anyway)."""
    return model.to(device=device, memory_format=memory_format(channels_last))


def input_to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
