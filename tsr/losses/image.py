"""The SR task's loss, as TextZoom trains TSRN: MSE on every channel (RGB + mask) plus a small gradient-profile
term on RGB that rewards sharp stroke edges (TextZoom's ImageLoss with loss_weight [1, 1e-4])."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GradientProfileLoss(nn.Module):
    """L1 distance between the gradient-magnitude maps of two image batches [B, C, H, W].

    The map is sqrt(((right - left) / 2)^2 + ((below - above) / 2)^2) with zero padding at the borders, as
    TextZoom's GradientPriorLoss; `eps` inside the root keeps its derivative finite where an image is flat
    (TextZoom has none: a flat region of the SR output would give NaN gradients).
    """

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def gradient_map(self, x: torch.Tensor) -> torch.Tensor:
        right = F.pad(x, (0, 1, 0, 0))[..., :, 1:]
        left = F.pad(x, (1, 0, 0, 0))[..., :, :-1]
        below = F.pad(x, (0, 0, 0, 1))[..., 1:, :]
        above = F.pad(x, (0, 0, 1, 0))[..., :-1, :]
        return (((right - left) * 0.5) ** 2 + ((below - above) * 0.5) ** 2 + self.eps).sqrt()

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.gradient_map(output), self.gradient_map(target))


class SRLoss(nn.Module):
    """mse_weight * MSE(sr, hr) + gradient_weight * GradientProfile(sr[:, :3], hr[:, :3]); float32 throughout
    (the SR image may come out of an autocast region in bf16/fp16)."""

    def __init__(self, mse_weight: float = 1.0, gradient_weight: float = 1e-4):
        super().__init__()
        self.mse_weight, self.gradient_weight = mse_weight, gradient_weight
        self.gradient = GradientProfileLoss()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if sr.shape != hr.shape:
            raise ValueError(f"SR loss: SR output {tuple(sr.shape)} and HR target {tuple(hr.shape)} differ; "
                             "check data.mask and the head's stages against data.hr_* / data.lr_*")
        sr, hr = sr.float(), hr.float()
        loss = self.mse_weight * F.mse_loss(sr, hr)
        if self.gradient_weight:
            loss = loss + self.gradient_weight * self.gradient(sr[:, :3], hr[:, :3])
        return loss
