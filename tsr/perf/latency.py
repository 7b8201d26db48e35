"""SR inference latency per crop on CPU, the figure `tsr bench --int8` (fp32 vs int8) and launch/efficiency.sh
(per backbone) report: tsr.inference.super_resolve (eval mode, no grad, clamped output) on random LR crops.

Each figure is the median of single timed calls, not their mean: on a shared machine one call in ten can take
twice as long, and the mean follows it. Models compared with each other are timed in turns (A, B, A, B, ...), so
that a busy stretch of the machine slows all of them alike and their ratio stays meaningful."""
from __future__ import annotations

import statistics
from typing import Mapping

import torch

from tsr import inference
from tsr.engine.timing import call_seconds


def compare_sr_latency_ms(models: Mapping[str, torch.nn.Module], lr_shape: tuple[int, ...], batch: int,
                          repeats: int = 10, device: torch.device = torch.device("cpu")) -> dict[str, float]:
    """Milliseconds per crop of each model super-resolving the same batch of `batch` random LR crops of shape
    `lr_shape` ([C, h, w]): the median of `repeats` calls after one warm-up call, the models' calls taken in turns.
    {name: ms per crop}."""
    if repeats < 1 or batch < 1:
        raise ValueError(f"repeats and batch must be >= 1, got repeats={repeats}, batch={batch}")
    lr = torch.rand(batch, *lr_shape, generator=torch.Generator().manual_seed(0)).to(device)
    calls = {name: (lambda m=model: inference.super_resolve(m, lr)) for name, model in models.items()}
    seconds = {name: [] for name in calls}
    for turn in range(repeats + 1):
        for name, call in calls.items():
            elapsed = call_seconds(call, device)
            if turn:                     # the first turn warms up: allocator growth, oneDNN primitive creation
                seconds[name].append(elapsed)
    return {name: statistics.median(s) * 1e3 / batch for name, s in seconds.items()}

