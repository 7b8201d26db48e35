"""IMDN_RTC backbone: the ultra-light IMDN that won the AI in RTC 2019 image SR challenge (official code
Zheng222/IMDN, model/architecture.py `IMDN_RTC`: 12 channels, 5 IMD blocks without channel attention
(`IMDModule_speed`), a 1x1 `LR_conv`, a global skip around blocks + LR_conv; x2 about 20K parameters with the
upsampler), without its upsampler (the `shuffle` head here)."""
from __future__ import annotations

import torch
from torch import nn

from tsr.models.imdn import IMDModule
from tsr.models.light_blocks import check_light_backbone, conv


class IMDNRTCBackbone(nn.Module):
    """LR [B, in_channels, h, w] -> features [B, channels, h, w] = f + LR_conv(blocks(f)), f = fea_conv(LR)."""

    def __init__(self, in_channels: int = 3, channels: int = 12, blocks: int = 5, stn: bool = False,
                 lr_size: tuple[int, int] = (16, 64)):
        super().__init__()
        check_light_backbone("imdn_rtc", in_channels, channels, blocks, stn)
        self.fea_conv = conv(in_channels, channels, 3)
        self.body = nn.Sequential(*[IMDModule(channels, attention=False) for _ in range(blocks)])
        self.LR_conv = conv(channels, channels, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(lr)
        return fea + self.LR_conv(self.body(fea))
