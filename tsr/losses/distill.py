"""Text distillation (TATT / LEMMA-style): the recognizer's reading of the HR image teaches its reading of the SR
image. The target is a distribution per time step, not the label, so the SR network is pulled towards what the HR
image looks like to the recognizer rather than towards any image the recognizer happens to label right (the
adversarial images a CTC loss through a frozen recognizer can learn)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistillationLoss(nn.Module):
    """student logits [T, B, C] (SR image), teacher logits [T, B, C] (HR image) ->
    temperature^2 * mean over the T*B steps of KL(softmax(teacher / temperature) || softmax(student / temperature)),
    in float32. The teacher gets no gradient. temperature^2 keeps the gradient's size independent of the
    temperature (Hinton et al. 2015)."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape != teacher.shape or student.dim() != 3:
            raise ValueError(f"distillation: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} logits "
                             "must both be [T, B, classes]")
        t = self.temperature
        log_p_student = F.log_softmax(student.float() / t, dim=-1)
        log_p_teacher = F.log_softmax(teacher.detach().float() / t, dim=-1)
        kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)     # T x B
        return kl.mean() * t * t
