"""What a stage trains: its tasks, what the model reads from a batch, each task's loss, and how the losses are
combined. All from the config: `train.tasks`, `train.weighting`, `model.parts` / `model.*.trainable`.

    sr     MSE + gradient profile between the SR image and HR
    rec    CTC between the recognizer's logits and the word
    align  feature level: MSE between the adapter's sequence and the sequence the recognizer's (frozen) CNN makes
           of the HR image, i.e. what the BiLSTMs already know how to read. It gives the adapter a dense target
           from the first step, where CTC alone needs many steps to leave its initial plateau. The cnn adapter's
           target is the map it stands for, the recognizer's `cnn.<layer>` activation of the HR image (squared
           error relative to that map's energy, as tsr.losses.content: those activations are small).
    distill  the recognizer's logits of the SR image vs its logits of the HR image (KL, tsr.losses.distill)
    content  the recognizer's CNN sequence of the SR image vs that of the HR image, and of the activations
           `train.content_layers` names (tsr.losses.content)
           Both read the SR *image* with the model's recognizer (at image and at feature level) and train the SR
           network towards what HR looks like to that recognizer, not towards the label.

`train.task_start` delays a task: its loss counts from that optimizer step on (before, it is multiplied by 0, so
every parameter still gets a gradient as DDP requires), e.g. {rec: 50}: a new adapter first learns `align` alone,
before CTC reaches the SR network through it. `train.rec_inputs` (recognizer stage only): the images it reads, HR
and/or the bicubic upscaling of LR, concatenated into one batch (a reader that also knows degraded crops).
`train.feature_grad_start` (feature level): the step from which the adapter's losses (rec, align) reach the SR
network through its features; before it (or always, with null) the adapter reads detached features.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import torch
import torch.nn.functional as F

from tsr.charset import CTCCodec, alphabet_for
from tsr.checkpoint import unwrap
from tsr.config import ConfigError
from tsr.data.blur import blurred
from tsr.engine import fast_path
from tsr.losses import CTCTaskLoss, SRLoss, build_weighting
from tsr.losses.content import ContentLoss, check_layers, layer_outputs
from tsr.losses.distill import DistillationLoss
from tsr.metrics.protocol import STANDARD, bicubic_upscale
from tsr.models.parts import upstream
from tsr.models.wrapper import FullModel


# task -> (the part whose output its loss reads, the parts it needs). The parts a loss reaches are that part and
# everything upstream of it in the model (tsr.models.parts.upstream).
# distill and content read the SR image with the recognizer (at either level) and train the SR network through it.
TASKS = {"sr": ("head", ("sr", "head")), "rec": ("recognizer", ("recognizer",)),
         "align": ("adapter", ("adapter", "recognizer")),
         "distill": ("head", ("sr", "head", "recognizer")), "content": ("head", ("sr", "head", "recognizer"))}


class StageTasks:
    """Checks at construction that every task has the parts it needs and that every trainable parameter is
    reached by some task's loss (DDP requires it, and a frozen-by-accident part is a silent bug otherwise)."""

    def __init__(self, cfg: dict, model: FullModel):
        train = cfg["train"]
        self.tasks = tuple(train["tasks"])
        if not self.tasks:
            raise ConfigError("config key 'train.tasks' is empty; name the losses this stage trains (sr, rec, align, "
                              "distill, content)")
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
        self.rec_inputs = _checked_rec_inputs(train["rec_inputs"], self.input_key)
        self.task_start = _checked_task_start(train["task_start"], self.tasks)
        self.feature_grad_start = train["feature_grad_start"]
        if not (self.feature_grad_start is None or (isinstance(self.feature_grad_start, int)
                                                    and self.feature_grad_start >= 0)):
            raise ConfigError(f"config key 'train.feature_grad_start' is {self.feature_grad_start!r}; expected a step "
                              ">= 0, or null (the adapter's losses never reach the SR network)")
        self.sr_loss = SRLoss(*train["sr_loss_weights"]) if "sr" in self.tasks else None
        self.ctc_loss = CTCTaskLoss(CTCCodec(alphabet_for(cfg["data"]["label_filter"]))) if "rec" in self.tasks else None
        self.distill_loss = DistillationLoss(train["distill_temperature"]) if "distill" in self.tasks else None
        self.content_loss = ContentLoss() if "content" in self.tasks else None
        self.reads_hr = bool({"align", "distill", "content"} & set(self.tasks))
        self.recognizer = model["recognizer"].net if self.reads_hr else None
        self.content_layers = tuple(train["content_layers"]) if self.content_loss is not None else ()
        if self.content_layers:
            check_layers(self.recognizer, self.content_layers)
        self.image_level = "adapter" not in parts
        # align's pair: the adapter's output and the recognizer activation of HR it stands for; the final
        # sequence (sequence adapters), or for the cnn adapter its map and the recognizer module it stands in for
        layer = getattr(model["adapter"].net, "layer", None) if "adapter" in parts else None
        self.align_map = model["recognizer"].net.module_name(layer) if "align" in self.tasks and layer else None
        self.map_loss = ContentLoss() if self.align_map else None
        # learned weights are a model part (trained, synchronised, saved); fixed ones are built here
        self.weighting = (model["weighting"].net if "weighting" in model
                          else build_weighting(train["weighting"], self.tasks, train["task_weights"]))

    def inputs(self, batch: dict) -> torch.Tensor:
        """The model's input images: LR for a model with an SR part, else the `rec_inputs` stacked along the batch
        (HR [B, C, 32, 128] and/or bicubic(LR) of the same size -> [len(rec_inputs) * B, C, 32, 128])."""
        if self.input_key == "lr":
            return batch["lr"]
        # bicubic as the standard protocol makes it (align_corners=False, clamped): images a reader meets in use
        images = {"hr": lambda: batch["hr"],
                  "bicubic": lambda: bicubic_upscale(batch["lr"], batch["hr"].shape[-2:], STANDARD),
                  "blurred": lambda: blurred(batch["hr"])}
        return torch.cat([images[kind]() for kind in self.rec_inputs])

    def words(self, batch: dict) -> list[str]:
        """The labels of `inputs(batch)`, in its order."""
        return list(batch["label"]) * (len(self.rec_inputs) if self.input_key == "hr" else 1)

    def losses(self, outputs: dict, batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
        """Model outputs (FullModel.forward) + batch -> {task: float32 scalar}."""
        losses = {}
        hr = batch["hr"].to(device, non_blocking=True)
        if self.sr_loss is not None:
            losses["sr"] = self.sr_loss(outputs["sr"], hr)
        if self.ctc_loss is not None:
            losses["rec"] = self.ctc_loss(outputs["logits"], self.words(batch))
        if self.recognizer is None:
            return losses
        # what the recognizer makes of HR: the target of align, content, distill
        hooked = self.content_layers + ((self.align_map,) if self.align_map else ())
        with torch.no_grad(), layer_outputs(self.recognizer, hooked) as hr_layers:
            hr_sequence = self.recognizer.encode(hr)
            hr_logits = self.recognizer.decode_sequence(hr_sequence) if self.distill_loss is not None else None
        if self.align_map:
            losses["align"] = self.map_loss(outputs["adapter_map"], hr_layers[self.align_map])
        elif "align" in self.tasks:
            losses["align"] = F.mse_loss(outputs["sequence"].float(), hr_sequence.float())
        if self.content_loss is not None or self.distill_loss is not None:
            with layer_outputs(self.recognizer, self.content_layers) as sr_layers:
                sr_sequence = self.recognizer.encode(outputs["sr"])
            if self.content_loss is not None:
                # the final sequence and each train.content_layers activation weigh alike
                terms = [self.content_loss(sr_layers[n], hr_layers[n]) for n in self.content_layers]
                losses["content"] = torch.stack([self.content_loss(sr_sequence, hr_sequence), *terms]).mean()
            if self.distill_loss is not None:
                # at image level the forward already read the SR image; at feature level its logits come from the
                # adapter, so the SR image is read here
                sr_logits = outputs["logits"] if self.image_level else self.recognizer.decode_sequence(sr_sequence)
                losses["distill"] = self.distill_loss(sr_logits, hr_logits)
        return losses

    def combine(self, losses: dict[str, torch.Tensor], step: Optional[int] = None) -> torch.Tensor:
        """The one scalar to back-propagate; tasks whose train.task_start is after `step` (optimizer steps done)
        weigh 0. step None: every task counts."""
        if step is not None:
            waiting = {t for t, start in self.task_start.items() if step < start}
            if waiting:
                return self.weighting(losses, active=set(self.tasks) - waiting)
        return self.weighting(losses)

    def forward_losses(self, model, batch: dict, device: torch.device, amp: Optional[torch.dtype],
                       channels_last: bool, step: Optional[int] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One forward of `model` (the full model, or DDP around it) on `batch` under autocast `amp` -> (combined
        loss, {task: loss}); losses are float32. `step`: optimizer steps done (for train.task_start). The trainer
        and `tsr bench` step through here."""
        inputs = fast_path.input_to_device(self.inputs(batch), device, channels_last)
        if "adapter" in unwrap(model):
            start = self.feature_grad_start
            unwrap(model).detach_adapter_input = start is None or (step is not None and step < start)
        # the cnn adapter's map, which align reads, is caught on its way through the forward
        maps = layer_outputs(unwrap(model)["adapter"].net, ["maps"]) if self.align_map else nullcontext({})
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None), maps as adapter_layers:
            outputs = model(inputs)
        if self.align_map:
            outputs = {**outputs, "adapter_map": adapter_layers["maps"]}
        losses = self.losses(outputs, batch, device)
        return self.combine(losses, step), losses

    def weighting_scalars(self) -> dict[str, float]:
        return self.weighting.scalars()


def _checked_rec_inputs(rec_inputs, input_key: str) -> tuple[str, ...]:
    kinds = ("hr", "bicubic", "blurred")
    if not isinstance(rec_inputs, list) or not rec_inputs or any(k not in kinds for k in rec_inputs):
        raise ConfigError(f"config key 'train.rec_inputs' is {rec_inputs!r}; expected a non-empty list of {list(kinds)}")
    if input_key == "lr" and rec_inputs != ["hr"]:
        raise ConfigError(f"config key 'train.rec_inputs' is {rec_inputs!r}, but only the recognizer stage (no sr part) "
                          "reads HR or bicubic images; a model with an sr part reads LR")
    return tuple(rec_inputs)


def _checked_task_start(task_start, tasks: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(task_start, dict):
        raise ConfigError(f"config key 'train.task_start' is {task_start!r}; expected a mapping task -> step")
    for task, step in task_start.items():
        if task not in tasks or not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ConfigError(f"config key 'train.task_start' has {task}: {step!r}; expected tasks of train.tasks "
                              f"{list(tasks)} with a step >= 0")
    if all(task_start.get(t, 0) > 0 for t in tasks):
        raise ConfigError(f"config key 'train.task_start' {task_start} delays every task; at least one must start at 0")
    return dict(task_start)


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
                              "model the recognizer's CNN is replaced by the adapter and never runs (with the cnn "
                              "adapter: its first layer), so it gets no gradient; use "
                              "model.recognizer.trainable=sequence, head_only or none")
