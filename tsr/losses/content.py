"""Text content loss: the frozen recognizer's CNN features of the SR image should match those of the HR image
(a perceptual loss with a text recognizer as the feature network, as in TPGSR / Text Gestalt). Matching features
of the whole HR image constrains every stroke the recognizer looks at, so it is less prone than CTC to images
that only this recognizer reads."""
from __future__ import annotations

import torch
from torch import nn


class ContentLoss(nn.Module):
    """student [T, B, D] (recognizer.encode of the SR image), target [T, B, D] (of the HR image) ->
    sum((student - target)^2) / (sum(target^2) + eps), float32: the squared error relative to the target's energy,
    so its size (about 1 for a blank SR image) does not depend on the recognizer's feature scale. The target
    gets no gradient."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if student.shape != target.shape:
            raise ValueError(f"content loss: SR features {tuple(student.shape)} and HR features "
                             f"{tuple(target.shape)} differ")
        target = target.detach().float()
        return ((student.float() - target) ** 2).sum() / ((target ** 2).sum() + self.eps)
