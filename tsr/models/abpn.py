"""ABPN backbone, the anchor-based plain net (Du, Chen, Li, Zhang et al., "Anchor-based Plain Net for Mobile
Image Super-Resolution", CVPR 2021 MAI workshop; official code NJU-Jet/SR_Mobile_Quantization `base7`):
plain 3x3 convolutions with ReLU, nothing an int8 accelerator would find awkward.

base7 is conv(3 -> 28) + ReLU, m = 4 x (conv 28 -> 28 + ReLU), then conv(28 -> 3s^2) + ReLU, conv(3s^2 -> 3s^2),
the anchor (the input repeated s^2 times) added, depth-to-space, clip: 42.5K parameters at x3. Here the first
1 + m convolutions are the backbone (features [B, channels, h, w] for the heads and adapters) and the last two,
the anchor and the depth-to-space are the `anchor` head (tsr.models.shuffle_head), so that
`model.sr.type=abpn model.head.type=anchor` is base7 (channels = num_fea, blocks = m).

Ready for eager-mode int8 (tsr.quantize): QuantStub in, DeQuantStub out, conv + ReLU pairs fusable.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.ao.quantization import DeQuantStub, QuantStub

from tsr.models.light_blocks import check_light_backbone


class ABPNBackbone(nn.Module):
    """LR [B, in_channels, h, w] -> features [B, channels, h, w]: `body` = 1 + blocks x (conv3x3 + ReLU)."""

    def __init__(self, in_channels: int = 3, channels: int = 28, blocks: int = 4, stn: bool = False,
                 lr_size: tuple[int, int] = (16, 64)):
        super().__init__()
        check_light_backbone("abpn", in_channels, channels, blocks, stn)
        widths = [in_channels] + [channels] * (blocks + 1)
        self.quant = QuantStub()
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU())
                                    for a, b in zip(widths, widths[1:])])
        self.dequant = DeQuantStub()

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(lr)))

    def quant_fuse_groups(self) -> list[list[str]]:
        """Submodule names fused for int8 (conv + ReLU -> one ConvReLU2d)."""
        return [[f"body.{i}.0", f"body.{i}.1"] for i in range(len(self.body))]
