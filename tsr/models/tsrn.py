"""TSRN backbone (Wang et al., "Scene Text Image Super-Resolution in the Wild", ECCV 2020), without its upsampler.

The upsampler (TextZoom's last block) is `tsr.models.heads.PixelShuffleHead`. Submodule names are TextZoom's
(`block1` .. `block{blocks+2}`, `tps`, `stn_head`), so every key of this module's state dict equals the key
of the same tensor in a TextZoom `state_dict_G`; `tsr.checkpoint.public` does the rest of the mapping.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsr.models.tps_stn import STNHead, TPSSpatialTransformer

NUM_CONTROL_POINTS = 20
TPS_MARGINS = (0.05, 0.05)


class GruBlock(nn.Module):
    """1x1 conv, then a bidirectional GRU run along every row (`along="width"`) or every column ("height").

    [B, C, H, W] -> [B, C, H, W]; the two directions' C/2 hidden units are concatenated back to C channels.
    """

    def __init__(self, channels: int, along: str):
        super().__init__()
        if channels % 2:
            raise ValueError(f"GruBlock needs an even channel count (two directions of C/2), got {channels}")
        if along not in ("width", "height"):
            raise ValueError(f"along must be 'width' or 'height', got {along!r}")
        self.along = along
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=1)
        self.gru = nn.GRU(channels, channels // 2, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        b, c, h, w = x.shape
        if self.along == "width":
            sequences = x.permute(0, 2, 3, 1).reshape(b * h, w, c)     # one sequence per row
            out, _ = self.gru(sequences)
            return out.view(b, h, w, c).permute(0, 3, 1, 2)
        sequences = x.permute(0, 3, 2, 1).reshape(b * w, h, c)         # one sequence per column
        out, _ = self.gru(sequences)
        return out.view(b, w, h, c).permute(0, 3, 2, 1)


class RecurrentResidualBlock(nn.Module):
    """TextZoom's SRB: conv-BN-Mish-conv-BN, a column GRU on that branch, a residual add, then a row GRU.

    [B, C, H, W] -> [B, C, H, W]. Note the row GRU (`gru2`) acts on the sum, after the skip, as in TextZoom.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.gru1 = GruBlock(channels, along="height")
        self.mish = nn.Mish()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.gru2 = GruBlock(channels, along="width")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.mish(self.bn1(self.conv1(x)))
        branch = self.gru1(self.bn2(self.conv2(branch)))
        return self.gru2(x + branch)


class TSRNBackbone(nn.Module):
    """LR image [B, in_channels, H, W] -> features [B, channels, H, W] (TextZoom: [B, 4, 16, 64] -> [B, 64, 16, 64]).

    9x9 conv + PReLU (`block1`), `blocks` recurrent residual blocks (`block2` ..), conv + BN
    (`block{blocks+2}`); the output is block1's output + block{blocks+2}'s output, the global skip sum that
    TextZoom feeds to its upsampler.

    With `stn=True` a TPS-STN rectifies the input **only in training mode** (`self.training`), exactly as
    TextZoom's TSRN: the input is resized to 32x64 for the localisation network and warped to `lr_size`.
    In eval mode rectification is skipped and the `tps` / `stn_head` weights are unused.
    """

    def __init__(self, in_channels: int = 4, channels: int = 64, blocks: int = 5, stn: bool = True,
                 lr_size: tuple[int, int] = (16, 64)):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        self.blocks = blocks
        self.stn = stn
        self.lr_size = tuple(lr_size)
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(blocks):
            setattr(self, f"block{i + 2}", RecurrentResidualBlock(channels))
        setattr(self, f"block{blocks + 2}", nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1),
                                                          nn.BatchNorm2d(channels)))
        if stn:
            self.tps = TPSSpatialTransformer(self.lr_size, NUM_CONTROL_POINTS, TPS_MARGINS)
            self.stn_head = STNHead(in_channels, NUM_CONTROL_POINTS)

    def rectify(self, lr: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, C, *lr_size]: TPS warp predicted from the input resized to 32x64."""
        if tuple(lr.shape[-2:]) != self.lr_size:
            # The TPS output size is fixed at construction; a different input size would silently change scale.
            raise ValueError(f"TSRNBackbone(lr_size={self.lr_size}) got a {lr.shape[-2]}x{lr.shape[-1]} input")
        resized = F.interpolate(lr, size=STNHead.input_size, mode="bilinear", align_corners=True)
        return self.tps(resized, self.stn_head(resized))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, in_channels, H, W] -> features [B, channels, H, W]."""
        if self.stn and self.training:
            lr = self.rectify(lr)
        first = self.block1(lr)
        x = first
        for i in range(self.blocks + 1):
            x = getattr(self, f"block{i + 2}")(x)
        return first + x
