"""PixelShuffle SR head: backbone features -> SR image (TextZoom's TSRN upsampler, `block{blocks+3}` there)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tsr.config import ConfigError


class UpsampleBlock(nn.Module):
    """conv3x3 (C -> 4C), PixelShuffle(2), Mish: [B, C, h, w] -> [B, C, 2h, 2w]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, kernel_size=3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.mish = nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mish(self.shuffle(self.conv(x)))


class PixelShuffleHead(nn.Module):
    """features [B, channels, h, w] -> image [B, out_channels, h * 2**stages, w * 2**stages].

    `stages` x UpsampleBlock (`upsample.{i}`), a 9x9 conv to `out_channels` (`conv_out`), then tanh: TSRN's
    upsampler. With `bicubic_skip` the tanh output is added to the bicubic upscaling of the LR input (a global
    residual, as VDSR): the network starts at bicubic quality and learns only the correction, which short
    runs (CPU demos) need; TextZoom's TSRN has no such skip (off by default, no extra parameters).
    """

    def __init__(self, channels: int = 64, out_channels: int = 4, stages: int = 1, bicubic_skip: bool = False):
        super().__init__()
        if stages < 0:
            raise ValueError(f"stages must be >= 0, got {stages}")
        self.stages = stages
        self.bicubic_skip = bicubic_skip
        self.upsample = nn.Sequential(*[UpsampleBlock(channels) for _ in range(stages)])
        self.conv_out = nn.Conv2d(channels, out_channels, kernel_size=9, padding=4)
        if bicubic_skip:
            # the correction starts at exactly 0: the untrained model is bicubic, not bicubic plus noise
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, features: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
        """`lr` [B, out_channels, h, w] is needed with bicubic_skip (and ignored without)."""
        out = torch.tanh(self.conv_out(self.upsample(features)))
        if not self.bicubic_skip:
            return out
        if lr is None or lr.shape[1] != out.shape[1]:
            raise ValueError(f"PixelShuffleHead with bicubic_skip needs the LR input with {out.shape[1]} channels, "
                             f"got {None if lr is None else tuple(lr.shape)}")
        return out + F.interpolate(lr, size=out.shape[-2:], mode="bicubic", align_corners=False)


def check_scale(stages: int, lr_size: Sequence[int], hr_size: Sequence[int]) -> None:
    """Raise ConfigError unless hr_size == lr_size * 2**stages in both dimensions ((height, width) pairs)."""
    factor = 2 ** stages
    lr_h, lr_w = lr_size
    hr_h, hr_w = hr_size
    if (lr_h * factor, lr_w * factor) == (hr_h, hr_w):
        return
    if hr_h % lr_h == 0 and hr_w % lr_w == 0 and hr_h // lr_h == hr_w // lr_w:
        data_scale = f"x{hr_h // lr_h}"
    else:
        data_scale = f"x{hr_h / lr_h:g} in height and x{hr_w / lr_w:g} in width"
    raise ConfigError(f"model.head.stages={stages} upsamples x{factor}, but data.lr_* ({lr_h}x{lr_w}) -> "
                      f"data.hr_* ({hr_h}x{hr_w}) is {data_scale}; set model.head.stages so that "
                      f"hr = lr * 2**stages")
