"""The recognition task's loss: CTC over the recognizer's logits [T, B, classes] (class 0 = blank)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tsr.charset import CTCCodec


class CTCTaskLoss(nn.Module):
    """logits [T, B, classes] + words -> mean CTC loss (per sample divided by its target length, then averaged
    over the batch), computed in float32. zero_infinity: a word longer than T's alignment allows gives 0 instead
    of inf (data.max_len keeps such words out; this only guards the run)."""

    def __init__(self, codec: CTCCodec):
        super().__init__()
        self.codec = codec

    def forward(self, logits: torch.Tensor, words: Sequence[str]) -> torch.Tensor:
        if logits.dim() != 3 or logits.shape[1] != len(words):
            raise ValueError(f"CTC loss: logits must be [T, B={len(words)}, classes], got {tuple(logits.shape)}")
        targets, target_lengths = self.codec.encode(words)
        log_probs = F.log_softmax(logits.float(), dim=2)
        input_lengths = torch.full((logits.shape[1],), logits.shape[0], dtype=torch.long)
        return F.ctc_loss(log_probs, targets.to(logits.device), input_lengths, target_lengths,
                          blank=0, reduction="mean", zero_infinity=True)
