"""Optimizer and learning-rate schedule from `train.*`."""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from tsr.config import ConfigError
from tsr.models.wrapper import FullModel


def build_optimizer(model: FullModel, train: dict, fused: bool = False) -> torch.optim.Optimizer:
    """Adam / AdamW over every part's trainable parameters (the wrapper's groups: no decay on biases and norm
    weights). `fused` picks the single-kernel CUDA implementation."""
    groups = model.param_groups(lr=train["lr"], weight_decay=train["weight_decay"])
    scales = train["lr_scale"]
    unknown = sorted(set(scales) - set(model.keys()))
    if unknown:
        raise ConfigError(f"train.lr_scale names {unknown}, which are not parts of this model {list(model.keys())}")
    for group in groups:
        # e.g. a new adapter learns at a higher rate than pre-trained parts it feeds
        group["lr"] = train["lr"] * float(scales.get(group["part"], 1.0))
    if not groups:
        raise ConfigError("nothing to train: every part is frozen (model.*.trainable); "
                          f"parts: {[(p.name, p.trainable) for p in model.parts()]}")
    betas = tuple(train["betas"])
    if len(betas) != 2:
        raise ConfigError(f"config key 'train.betas' needs two values, got {train['betas']!r}")
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[train["optimizer"]]
    extra = {"fused": True} if fused else {}
    return kind(groups, betas=betas, **extra)


def lr_factor(step: int, train: dict) -> float:
    """Multiplier of train.lr after `step` optimizer steps: linear warm-up, then the schedule."""
    warmup, total = train["warmup_steps"], train["steps"]
    if warmup and step < warmup:
        return (step + 1) / warmup
    schedule = train["lr_schedule"]
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 0.1 ** sum(step >= milestone for milestone in train["lr_milestones"])


def build_scheduler(optimizer: torch.optim.Optimizer, train: dict) -> LambdaLR:
    milestones = train["lr_milestones"]
    if train["lr_schedule"] == "step" and (not milestones or not all(isinstance(m, int) for m in milestones)):
        raise ConfigError(f"train.lr_schedule is 'step' but train.lr_milestones is {milestones!r} "
                          "(expected a list of step numbers)")
    return LambdaLR(optimizer, lambda step: lr_factor(step, train))
