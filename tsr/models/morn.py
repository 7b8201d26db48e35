"""MORN, MORAN's rectifier (Luo et al. 2019; MORAN_v2's `morn.py`), as TextZoom's evaluation runs it (test=True,
no random skip): a small CNN predicts a vertical offset map, which moves every row of the image up or down.

Module names are MORAN_v2's (`cnn.1` .. `cnn.16`), so `module.MORN.*` keys load as they are. Every grid_sample
aligns corners: the weights were trained under torch < 1.3, whose grid_sample did (newer torch defaults to
align_corners=False, which samples half a pixel off and reads differently).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MORN(nn.Module):
    """Grey image [B, 1, 32, 100] -> the rectified image [B, 1, 32, 100]."""

    def __init__(self, in_channels: int = 1, size: tuple[int, int] = (32, 100), enhance: int = 1):
        """`enhance`: extra refinement passes (MORAN_v2 runs 1 at test time)."""
        super().__init__()
        self.size, self.enhance = tuple(size), enhance
        self.cnn = nn.Sequential(
            nn.MaxPool2d(2, 2),                                                              # 16 x 50
            nn.Conv2d(in_channels, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(True), nn.MaxPool2d(2, 2),  # 8 x 25
            nn.Conv2d(64, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.ReLU(True), nn.MaxPool2d(2, 2),        # 4 x 12
            nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.Conv2d(64, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.Conv2d(16, 1, 3, 1, 1), nn.BatchNorm2d(1))                                   # 1 x 4 x 12
        self.pool = nn.MaxPool2d(2, 1)                                                       # 3 x 11
        height, width = self.size
        ys = torch.linspace(-1, 1, height).view(1, height, 1, 1).expand(1, height, width, 1)
        xs = torch.linspace(-1, 1, width).view(1, 1, width, 1).expand(1, height, width, 1)
        self.register_buffer("grid", torch.cat([xs, ys], dim=3), persistent=False)        # [1, H, W, 2] (x, y)

    def _offsets(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 1, H, W] -> vertical offsets [B, H, W, 1] (the pooled offset map resampled to full size);
        positive and negative parts are max-pooled separately, as in MORAN_v2."""
        offsets = self.cnn(image)
        pooled = self.pool(F.relu(offsets)) - self.pool(F.relu(-offsets))
        grid = self.grid.expand(image.shape[0], -1, -1, -1)
        return F.grid_sample(pooled, grid, align_corners=True).permute(0, 2, 3, 1)

    def _sample(self, image: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        grid = self.grid.expand(image.shape[0], -1, -1, -1)
        return F.grid_sample(image, torch.cat([grid[..., :1], grid[..., 1:] + offsets], dim=3), align_corners=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape[-2:]) != self.size:
            raise ValueError(f"MORN expects [B, C, {self.size[0]}, {self.size[1]}] images, got {tuple(image.shape)}")
        offsets = self._offsets(image)
        rectified = self._sample(image, offsets)
        for _ in range(self.enhance):                    # refine: offsets read from the rectified image add up
            offsets = offsets + self._offsets(rectified)
            rectified = self._sample(image, offsets)
        return rectified
