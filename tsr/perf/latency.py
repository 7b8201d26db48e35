"""SR inference latency per crop on CPU, the figure `tsr bench --int8` (fp32 vs int8) and launch/efficiency.sh
(per backbone) report: tsr.inference.super_resolve (eval mode, no grad, clamped output) on random LR crops."""
from __future__ import annotations

import torch

from tsr import inference
from tsr.engine.timing import timed


def sr_latency_ms(model, lr_shape: tuple[int, ...], batch: int, repeats: int = 10,
                  device: torch.device = torch.device("cpu")) -> float:
    """Milliseconds per crop of super-resolving a batch of `batch` LR crops of shape `lr_shape` ([C, h, w])."""
    lr = torch.rand(batch, *lr_shape, generator=torch.Generator().manual_seed(0)).to(device)
    return timed(lambda: inference.super_resolve(model, lr), repeats, device) * 1e3 / batch
