"""How the task losses become the one scalar that is back-propagated.

avg          plain (optionally weighted) mean of the task losses; no parameters.
uncertainty  Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry
             and Semantics", CVPR 2018: one learned log-variance s_t = log(sigma_t^2) per task;
                 regression (sr, align): 0.5 * exp(-s_t) * L_t + 0.5 * s_t   (eq. 5, Gaussian likelihood)
                 classification (rec): exp(-s_t) * L_t + 0.5 * s_t           (eq. 10, softmax with temperature)
             A task whose loss is noisy or large learns a larger sigma and weighs less; the 0.5 * s term keeps
             sigma from growing without bound. s is learned with the model (it is the `weighting` part, so it is
             in the optimizer, synchronised by DDP and saved in checkpoints as weighting.net.log_vars).
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from tsr.config import ConfigError

# Which likelihood each task's loss stands for (see the module docstring).
TASK_KINDS = {"sr": "regression", "rec": "classification", "align": "regression", "distill": "classification",
              "content": "regression"}


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in tasks if t not in TASK_KINDS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty list of {list(TASK_KINDS)}, got {list(tasks)}")
    return tuple(tasks)


class AverageWeighting(nn.Module):
    """sum_t w_t * L_t / sum_t w_t; with no weights given every w_t is 1 (the plain mean). No parameters and no
    buffers: it adds no keys to a model or checkpoint."""

    learned = False

    def __init__(self, tasks: Sequence[str], weights: Optional[Mapping[str, float]] = None):
        super().__init__()
        self.tasks = _check_tasks(tasks)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.tasks))
        if unknown:
            raise ValueError(f"task weights name {unknown}, which are not among the tasks {list(self.tasks)}")
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"task weights must be >= 0 with a positive sum, got {self.weights}")

    def forward(self, losses: Mapping[str, torch.Tensor], active: Optional[set] = None) -> torch.Tensor:
        """`active`: the tasks that count now (None: all); the others are multiplied by 0 (still in the graph,
        as DDP needs every parameter to get a gradient) and left out of the normalisation."""
        weights = {t: w if active is None or t in active else 0.0 for t, w in self.weights.items()}
        total = sum(weights[t] * losses[t] for t in self.tasks)
        return total / sum(weights.values())

    def scalars(self) -> dict[str, float]:
        return {f"weight/{t}": w / sum(self.weights.values()) for t, w in self.weights.items()}


class UncertaintyWeighting(nn.Module):
    """Learned log-variances `log_vars` [len(tasks)], one per task in `tasks` order (see the module docstring)."""

    learned = True     # a model part: trained, synchronised by DDP, saved (keys weighting.net.*)

    def __init__(self, tasks: Sequence[str], weights: Optional[Mapping[str, float]] = None, init_log_var: float = 0.0):
        super().__init__()
        self.tasks = _check_tasks(tasks)
        if weights:     # fixed weights would be silently overridden by the learned ones
            raise ValueError(f"weighting 'uncertainty' learns each task's weight; fixed task weights {dict(weights)} "
                             "cannot apply (set train.task_weights={} or train.weighting=avg)")
        self.log_vars = nn.Parameter(torch.full((len(self.tasks),), float(init_log_var)))

    def forward(self, losses: Mapping[str, torch.Tensor], active: Optional[set] = None) -> torch.Tensor:
        """`active`: the tasks that count now (None: all); the others' terms, log-variance included, are
        multiplied by 0 (their s does not drift while the task waits)."""
        total = 0.0
        for i, task in enumerate(self.tasks):
            s = self.log_vars[i].float()
            scale = 0.5 if TASK_KINDS[task] == "regression" else 1.0
            term = scale * torch.exp(-s) * losses[task] + 0.5 * s
            total = total + (term if active is None or task in active else 0.0 * term)
        return total

    def sigmas(self) -> dict[str, float]:
        """sigma_t = exp(s_t / 2) per task, for logging."""
        return {t: math.exp(float(s) / 2) for t, s in zip(self.tasks, self.log_vars.detach().cpu())}

    def scalars(self) -> dict[str, float]:
        return {f"sigma/{t}": v for t, v in self.sigmas().items()}

    def extra_repr(self) -> str:
        return f"tasks={list(self.tasks)}"


# train.weighting -> the module that combines the task losses
WEIGHTINGS: dict[str, type[nn.Module]] = {"avg": AverageWeighting, "uncertainty": UncertaintyWeighting}


def is_learned(name: str) -> bool:
    """Whether weighting `name` has parameters, so that the model carries it as its `weighting` part."""
    return WEIGHTINGS[name].learned


def build_weighting(name: str, tasks: Sequence[str], task_weights: Optional[Mapping[str, float]] = None) -> nn.Module:
    """train.weighting / train.tasks / train.task_weights -> the module that combines {task: loss} into one scalar;
    ConfigError naming the key for bad tasks or weights."""
    try:
        return WEIGHTINGS[name](tasks, task_weights)
    except ValueError as e:
        raise ConfigError(f"config keys train.weighting={name} / train.tasks / train.task_weights: {e}") from None
