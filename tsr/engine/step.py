"""One optimizer step of training: the step the trainer runs and `tsr bench` times, so that what is timed is what
trains. accum_steps micro-batches (forward, task losses, backward through the gradient scaler), then a caller's
check of the step's losses, then gradient clipping per part, the optimizer through the scaler, and the
learning-rate schedule."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, TypeVar

import torch
from torch import nn

from tsr.checkpoint import unwrap
from tsr.engine.tasks import StageTasks

T = TypeVar("T")


@dataclass
class OptimizerStep:
    module: nn.Module                 # what the forward runs through: DDP, the plain full model, or either compiled
    model: nn.Module                  # the full model itself (its trainable parameters are clipped)
    tasks: StageTasks
    optimizer: torch.optim.Optimizer
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler]
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: Optional[torch.dtype]        # autocast dtype, None for fp32
    channels_last: bool
    accum_steps: int = 1
    clip_grad_norm: float = 0.0       # > 0: clip each part's gradient norm to this (clip_parts)
    distributed: bool = False         # module is DDP: skip its all-reduce on all but the last micro-batch

    def __call__(self, batches: Iterator[dict], step: Optional[int],
                 before_update: Optional[Callable[[torch.Tensor, torch.Tensor], T]] = None) -> Optional[T]:
        """One step over the next accum_steps batches; `step`: optimizer steps done (train.task_start, None: every
        task on). `before_update(losses, counts)` runs after the backward passes and before the weights change
        (it may raise to skip the update); losses: float32 [1 + tasks] on CPU, (total, *task losses) averaged
        over the micro-batches; counts: float32 [2], (corrupt samples, images) summed over them. Returns what
        before_update returns (None without one)."""
        accum = self.accum_steps
        self.optimizer.zero_grad(set_to_none=True)
        sums: Optional[torch.Tensor] = None
        for micro in range(accum):
            batch = next(batches)
            # Gradients are all-reduced only at the last micro-batch: no_sync skips DDP's all-reduce for the
            # others, whose gradients just accumulate locally (same result, accum_steps times less traffic).
            sync = micro == accum - 1 or not self.distributed
            with nullcontext() if sync else self.module.no_sync():
                total, losses = self.tasks.forward_losses(self.module, batch, self.device, self.amp,
                                                          self.channels_last, step=step)
                self.scaler.scale(total / accum).backward()
            values = torch.stack([total.detach().float()] + [losses[t].detach().float() for t in self.tasks.tasks])
            sums = values if sums is None else sums + values
            corrupt_images = torch.tensor([batch["corrupt"], len(batch["label"])], dtype=torch.float32)
            counts = corrupt_images if micro == 0 else counts + corrupt_images
        means = sums.cpu() / accum   # on CPU beside `counts`: the trainer all-reduces them as one tensor
        result = before_update(means, counts) if before_update is not None else None
        if self.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            clip_parts(unwrap(self.model), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return result


def clip_parts(model: nn.Module, max_norm: float) -> None:
    """Clip the gradient norm of each part of the full model to max_norm, each part alone: a norm over all parts
    would let one part's large gradients (a recognizer's CTC) shrink every other part's step (the SR network's)."""
    for part in model.parts():
        params = part.trainable_parameters()
        if params:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
