"""Depth-to-space heads of the lightweight SR nets: a conv to out_channels x s^2 channels, then PixelShuffle(s).

    shuffle  IMDN's / RFDN's upsampler (`pixelshuffle_block`): conv3x3 (channels -> C s^2), depth-to-space.
    anchor   ABPN's: conv3x3 (channels -> C s^2) + ReLU, conv3x3 (C s^2 -> C s^2), + the anchor, depth-to-space.

The anchor is the LR input repeated s^2 times along channels (repeat_interleave: PixelShuffle reads channel
c * s^2 + k as sub-pixel k of output channel c), so before any training the head outputs the nearest-neighbour
upscaling of the LR image and the convolutions learn only the residual. ABPN's paper: this image-space residual
survives int8 far better than a feature-space one (+0.3 dB), because the skip itself is never requantised
through a wide feature range. `bicubic_skip` (shuffle only) adds the bicubic upscaling after the shuffle instead.
With either residual the last conv starts at zero, so the untrained model is exactly that upscaling.

Ready for eager-mode int8: QuantStubs on features and LR, the anchor add through FloatFunctional, DeQuantStub out
(the bicubic skip stays in float after it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import DeQuantStub, QuantStub


class ShuffleHead(nn.Module):
    """features [B, channels, h, w] (+ LR [B, out_channels, h, w]) -> image [B, out_channels, h s, w s], s = 2**stages."""

    def __init__(self, channels: int = 64, out_channels: int = 3, stages: int = 1, bicubic_skip: bool = False,
                 anchor: bool = False):
        super().__init__()
        if stages < 0:
            raise ValueError(f"stages must be >= 0, got {stages}")
        if anchor and bicubic_skip:
            raise ValueError("model.head.bicubic_skip=true with the anchor head: the anchor already adds the "
                             "(nearest-neighbour) upscaled LR; set model.head.bicubic_skip=false")
        self.scale = 2 ** stages
        self.anchor, self.bicubic_skip = anchor, bicubic_skip
        expanded = out_channels * self.scale ** 2
        self.quant_features, self.quant_lr, self.dequant = QuantStub(), QuantStub(), DeQuantStub()
        # ABPN's first head conv; IMDN's upsampler has only conv_out
        self.conv = nn.Sequential(nn.Conv2d(channels, expanded, 3, padding=1), nn.ReLU()) if anchor else None
        self.conv_out = nn.Conv2d(expanded if anchor else channels, expanded, 3, padding=1)
        self.add = nn.quantized.FloatFunctional()
        self.shuffle = nn.PixelShuffle(self.scale)
        if anchor or bicubic_skip:
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, features: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
        needs_lr = self.anchor or self.bicubic_skip
        expected = self.conv_out.out_channels // self.scale ** 2
        if needs_lr and (lr is None or lr.shape[1] != expected):
            raise ValueError(f"{'anchor' if self.anchor else 'shuffle'} head with a global residual needs the LR "
                             f"input with {expected} channels, got {None if lr is None else tuple(lr.shape)}")
        x = self.quant_features(features)
        x = self.conv_out(self.conv(x) if self.conv is not None else x)
        if self.anchor:
            x = self.add.add(x, self.quant_lr(lr).repeat_interleave(self.scale ** 2, dim=1))
        out = self.dequant(self.shuffle(x))
        if self.bicubic_skip:
            out = out + F.interpolate(lr, size=out.shape[-2:], mode="bicubic", align_corners=False)
        return out

    def quant_fuse_groups(self) -> list[list[str]]:
        return [["conv.0", "conv.1"]] if self.conv is not None else []
