"""RFDN backbone (Liu, Tang & Wu, "Residual Feature Distillation Network for Lightweight Image Super-Resolution",
ECCV 2020 AIM workshop; winner of the AIM 2020 efficient SR challenge), without its upsampler (the `shuffle`
head here). Layout of the official code (njulj/RFDN): `fea_conv`, `B1` .. `B{blocks}` residual feature
distillation blocks with enhanced spatial attention (ESA), `c` (1x1 + LeakyReLU over the concatenated block
outputs), `LR_conv`, plus the long skip. Official size: 50 channels, 4 blocks.

ESA shrinks the map with a stride-2 3x3 conv and a 7x7 / stride-3 max-pool, so the input must be at least 15
pixels high and wide (TextZoom's 16x64 LR is).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsr.models.light_blocks import DistillationTrunk, conv, lrelu

MIN_SIZE = 15           # the smallest h, w that survive ESA's stride-2 conv and 7x7/3 max-pool


class ESA(nn.Module):
    """Enhanced spatial attention, [B, C, h, w] -> [B, C, h, w]: x * sigmoid(mask), the mask computed at C/4
    channels on a strided, max-pooled map and upsampled back (bilinear)."""

    def __init__(self, channels: int):
        super().__init__()
        f = max(channels // 4, 1)
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"RFDN's ESA needs inputs of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape[-2:])}")
        c1_ = self.conv1(x)
        c1 = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)
        c3 = self.conv3_(F.relu(self.conv3(F.relu(self.conv_max(c1)))))
        c3 = F.interpolate(c3, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class RFDB(nn.Module):
    """Residual feature distillation block, [B, C, h, w] -> [B, C, h, w]: three steps of (1x1 conv -> C/2
    distilled channels, 3x3 conv + identity -> C refined channels), a last 3x3 conv to C/2, the four distilled
    parts concatenated, a 1x1 conv back to C and ESA."""

    def __init__(self, channels: int):
        super().__init__()
        dc = max(channels // 2, 1)
        self.c1_d, self.c1_r = conv(channels, dc, 1), conv(channels, channels, 3)
        self.c2_d, self.c2_r = conv(channels, dc, 1), conv(channels, channels, 3)
        self.c3_d, self.c3_r = conv(channels, dc, 1), conv(channels, channels, 3)
        self.c4 = conv(channels, dc, 3)
        self.act = lrelu()
        self.c5 = conv(dc * 4, channels, 1)
        self.esa = ESA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        r = x
        for c_d, c_r in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(c_d(r)))
            r = self.act(c_r(r) + r)
        distilled.append(self.act(self.c4(r)))
        return self.esa(self.c5(torch.cat(distilled, dim=1)))


class RFDNBackbone(DistillationTrunk):
    """LR [B, in_channels, h, w] -> features [B, channels, h, w] (h, w >= 15): fea_conv, `blocks` RFDBs `B1` ..,
    `c`, `LR_conv`, long skip (see DistillationTrunk)."""

    def __init__(self, in_channels: int = 3, channels: int = 50, blocks: int = 4, stn: bool = False,
                 lr_size: tuple[int, int] = (16, 64)):
        if min(lr_size) < MIN_SIZE:
            raise ValueError(f"rfdn needs an LR size of at least {MIN_SIZE}x{MIN_SIZE} (ESA), got {tuple(lr_size)}")
        super().__init__("rfdn", in_channels, channels, blocks, stn, RFDB, prefix="B")
