"""IMDN backbone (Hui, Gao, Yang & Wang, "Lightweight Image Super-Resolution with Information Multi-distillation
Network", ACM MM 2019), without its upsampler (`upsampler` there = the `shuffle` head here).

Submodule names are the official code's (Zheng222/IMDN, model/architecture.py `IMDN`): `fea_conv`, `IMDB1` ..
`IMDB{blocks}`, `c` (1x1 conv + LeakyReLU over the concatenated block outputs), `LR_conv`, so its keys equal
those of `IMDN_x2.pth` but for the upsampler (tsr.models.public_weights maps that one). Official size: 64
channels, 6 blocks (x2: 694K parameters with the upsampler).
"""
from __future__ import annotations

import torch
from torch import nn

from tsr.models.light_blocks import DistillationTrunk, conv, lrelu


def _std_channels(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over h, w (population): [B, C, h, w] -> [B, C, 1, 1]."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).pow(0.5)


class CCALayer(nn.Module):
    """Contrast-aware channel attention: x * sigmoid(MLP(std(x) + mean(x))) per channel."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)      # the official channels // 16, kept >= 1 for narrow test nets
        self.conv_du = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(),
                                     nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(_std_channels(x) + x.mean(dim=(2, 3), keepdim=True))


class IMDModule(nn.Module):
    """Information multi-distillation block, [B, C, h, w] -> [B, C, h, w]: three 3x3 convs each keep C/4
    channels ("distilled") and pass 3C/4 on, a fourth makes the last C/4; the four quarters are concatenated,
    weighted by contrast-aware channel attention (`cca`, omitted in the RTC variant), fused by a 1x1 conv, plus
    the input."""

    def __init__(self, channels: int, attention: bool = True):
        super().__init__()
        self.distilled = channels // 4
        self.remaining = channels - self.distilled
        if self.distilled < 1:
            raise ValueError(f"an IMD block needs at least 4 channels, got {channels}")
        self.c1 = conv(channels, channels, 3)
        self.c2 = conv(self.remaining, channels, 3)
        self.c3 = conv(self.remaining, channels, 3)
        self.c4 = conv(self.remaining, self.distilled, 3)
        self.act = lrelu()
        self.c5 = conv(self.distilled * 4, channels, 1)
        self.cca = CCALayer(self.distilled * 4) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        out = torch.cat([d1, d2, d3, self.c4(r3)], dim=1)
        if self.cca is not None:
            out = self.cca(out)
        return self.c5(out) + x


class IMDNBackbone(DistillationTrunk):
    """LR [B, in_channels, h, w] -> features [B, channels, h, w]: fea_conv, `blocks` IMD blocks `IMDB1` .., `c`,
    `LR_conv`, long skip (see DistillationTrunk)."""

    def __init__(self, in_channels: int = 3, channels: int = 64, blocks: int = 6, stn: bool = False,
                 lr_size: tuple[int, int] = (16, 64)):
        super().__init__("imdn", in_channels, channels, blocks, stn, IMDModule, prefix="IMDB")
