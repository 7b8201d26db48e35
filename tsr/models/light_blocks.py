"""Pieces shared by the lightweight SR backbones (IMDN, IMDN_RTC, RFDN, ABPN): "same"-padded convolutions and
the check that they have no TPS-STN (the `model.sr.stn` key belongs to TSRN).

Every lightweight backbone maps LR [B, in_channels, h, w] -> features [B, channels, h, w] at LR resolution, the
shape the heads and the feature-level adapters read; its upsampler is a head (`tsr.models.shuffle_head`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

LRELU_SLOPE = 0.05      # IMDN's and RFDN's LeakyReLU


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """Conv2d with bias and padding (kernel_size - 1) // 2: the spatial size is kept at stride 1."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2)


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(LRELU_SLOPE)


def check_light_backbone(name: str, in_channels: int, channels: int, blocks: int, stn: bool) -> None:
    """ValueError unless the sizes are positive and stn is off (these backbones have no rectifier)."""
    if stn:
        raise ValueError(f"model.sr.stn=true: the {name} backbone has no TPS-STN (only tsrn has one); "
                         "set model.sr.stn=false")
    if min(in_channels, channels, blocks) < 1:
        raise ValueError(f"{name} needs in_channels, channels and blocks >= 1, got {in_channels}, {channels}, {blocks}")


class DistillationTrunk(nn.Module):
    """IMDN's and RFDN's common layout, LR [B, in_channels, h, w] -> features [B, channels, h, w]: `fea_conv`
    (3x3), `blocks` distillation blocks `{prefix}1` .. (each [B, C, h, w] -> [B, C, h, w]), every block's output
    concatenated and fused by `c` (1x1 + LeakyReLU), `LR_conv` (3x3), plus fea_conv's output (the long skip)."""

    def __init__(self, name: str, in_channels: int, channels: int, blocks: int, stn: bool,
                 block: Callable[[int], nn.Module], prefix: str):
        super().__init__()
        check_light_backbone(name, in_channels, channels, blocks, stn)
        self.names = [f"{prefix}{i + 1}" for i in range(blocks)]     # the official module names
        self.fea_conv = conv(in_channels, channels, 3)
        for block_name in self.names:
            setattr(self, block_name, block(channels))
        self.c = nn.Sequential(conv(channels * blocks, channels, 1), lrelu())
        self.LR_conv = conv(channels, channels, 3)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(lr)
        outs, x = [], fea
        for block_name in self.names:
            x = getattr(self, block_name)(x)
            outs.append(x)
        return self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea
