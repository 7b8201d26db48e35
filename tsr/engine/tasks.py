"""What a stage trains: its tasks, what the model reads from a batch, each task's loss, and how the losses are
combined. All from the config: `train.tasks`, `train.weighting`, `model.parts` / `model.*.trainable`.

    sr     MSE + gradient profile between the SR image and HR
    rec    CTC between the recognizer's logits and the word
    align  feature level: MSE between the adapter's sequence and the sequence the recognizer's (frozen) CNN makes
           of the HR image, i.e. what the BiLSTMs already know how to read. It gives the adapter a dense target
           from the first step, where CTC alone needs many steps to leave its initial plateau.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from tsr.charset import CTCCodec, alphabet_for
from tsr.config import ConfigError
from tsr.engine import fast_path
from tsr.losses import CTCTaskLoss, SRLoss, build_weighting
from tsr.models.parts import upstream
from tsr.models.wrapper import FullModel


# task -> (the part whose output its loss reads, the parts it needs). The parts a loss reaches are that part and
# everything upstream of it in the model (tsr.models.parts.upstream).
TASKS = {"sr": ("head", ("sr", "head")), "rec": ("recognizer", ("recognizer",)),
         "align": ("adapter", ("adapter", "recognizer"))}


class StageTasks:
    """Checks at construction that every task has the parts it needs and that every trainable parameter is
    reached by some task's loss (DDP requires it, and a frozen-by-accident part is a silent bug otherwise)."""

    def __init__(self, cfg: dict, model: FullModel):
        train = cfg["train"]
        self.tasks = tuple(train["tasks"])
        if not self.tasks:
            raise ConfigError("config key 'train.tasks' is empty; name the losses this stage trains (sr, rec, align)")
        parts = set(model.keys())
        for task in self.tasks:
            if task not in TASKS:
                raise ConfigError(f"config key 'train.tasks' has {task!r}; valid tasks: {list(TASKS)}")
            absent = [p for p in TASKS[task][1] if p not in parts]
            if absent:
                raise ConfigError(f"train.tasks has '{task}' but model.parts {list(model.keys())} lacks {absent}")
        _check_reached(model, self.tasks)
        # Without an SR part the recognizer learns from HR images (the recognizer stage).
        self.input_key = "lr" if "sr" in parts else "hr"
        self.sr_loss = SRLoss(*train["sr_loss_weights"]) if "sr" in self.tasks else None
        self.ctc_loss = CTCTaskLoss(CTCCodec(alphabet_for(cfg["data"]["label_filter"]))) if "rec" in self.tasks else None
        self.recognizer = model["recognizer"].net if "align" in self.tasks else None
        # learned weights are a model part (trained, synchronised, saved); fixed ones are built here
        self.weighting = (model["weighting"].net if "weighting" in model
                          else build_weighting(train["weighting"], self.tasks, train["task_weights"]))

    def inputs(self, batch: dict) -> torch.Tensor:
        return batch[self.input_key]

    def losses(self, outputs: dict, batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
        """Model outputs (FullModel.forward) + batch -> {task: float32 scalar}."""
        losses = {}
        hr = batch["hr"].to(device, non_blocking=True)
        if self.sr_loss is not None:
            losses["sr"] = self.sr_loss(outputs["sr"], hr)
        if self.ctc_loss is not None:
            losses["rec"] = self.ctc_loss(outputs["logits"], batch["label"])
        if self.recognizer is not None:
            with torch.no_grad():
                target = self.recognizer.encode(hr)
            losses["align"] = F.mse_loss(outputs["sequence"].float(), target.float())
        return losses

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.weighting(losses)

    def forward_losses(self, model, batch: dict, device: torch.device, amp: Optional[torch.dtype],
                       channels_last: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One forward of `model` (the full model, or DDP around it) on `batch` under autocast `amp` -> (combined
        loss, {task: loss}); losses are float32. The trainer and `tsr bench` step through here."""
        inputs = fast_path.input_to_device(self.inputs(batch), device, channels_last)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            outputs = model(inputs)
        losses = self.losses(outputs, batch, device)
        return self.combine(losses), losses

    def weighting_scalars(self) -> dict[str, float]:
        return self.weighting.scalars()


def _check_reached(model: FullModel, tasks: tuple[str, ...]) -> None:
    """Which parts' parameters each task's loss reaches: sr -> sr, head; rec -> recognizer and, upstream of it,
    the adapter and sr (feature level) or head and sr (image level); align -> adapter, sr. In feature-level models
    the recognizer's CNN gets no gradient (the adapter replaces its output; align only reads it)."""
    reached = {"weighting"}.union(*(upstream(TASKS[task][0], model.keys()) for task in tasks))
    for part in model.parts():
        if part.trainable_parameters() and part.name not in reached:
            raise ConfigError(f"part '{part.name}' is trainable but no loss of train.tasks {list(tasks)} reaches it; "
                              f"set model.{part.name}.trainable=none or add the task that trains it")
    if "adapter" in model and "recognizer" in model:
        unused_cnn = [n for n, p in model["recognizer"].net.named_parameters() if p.requires_grad and n.startswith("cnn.")]
        if unused_cnn:
            raise ConfigError(f"model.recognizer.trainable is '{model['recognizer'].trainable}', but in a feature-level "
                              "model the recognizer's CNN is replaced by the adapter and never runs; use "
                              "model.recognizer.trainable=sequence, head_only or none")
