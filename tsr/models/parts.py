"""The one table of the full model's parts: what each part reads, what it writes, which parts it needs, and which
config keys its weights depend on. FullModel.forward (tsr.models.wrapper) runs the parts by it; the builder
checks model.parts against it, the trainer's tasks find which parts a loss reaches through it, checkpoint
merging takes each part's config keys from it.

Adding a kind of part: one row here, its construction in tsr.models.build, its call in FullModel.run_part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Optional


@dataclass(frozen=True)
class PartSpec:
    output: str                 # the key of FullModel.forward's result that holds this part's output
    reads: tuple[str, ...]      # the parts whose output it may read: it reads the first one present
    needs: tuple[str, ...]      # parts a model with this part must also have
    config: tuple[str, ...]     # config keys (sections or leaves) this part's weights depend on
    runs_first: bool = False    # may read the model's input when none of `reads` is present (see `runs`)


# Order = the order of parts in model.parts, in checkpoints and in optimizer groups.
PARTS: dict[str, PartSpec] = {
    # SR backbone: LR images [B, C, h, w] -> features [B, F, h, w]
    "sr": PartSpec(output="features", reads=(), needs=(), runs_first=True,
                   config=("model.sr", "data.mask", "data.lr_height", "data.lr_width")),
    # upsampler: features (+ the LR input, for a bicubic skip) -> SR images [B, C, H, W]
    "head": PartSpec(output="sr", reads=("sr",), needs=("sr",),
                     config=("model.head", "model.sr.channels", "data.mask", "data.lr_height", "data.lr_width",
                             "data.hr_height", "data.hr_width")),
    # text recognizer: sequence (feature level) or SR images (image level) or input images (alone) -> logits
    # [T, B, classes]
    "recognizer": PartSpec(output="logits", reads=("adapter", "head"), needs=(), runs_first=True,
                           config=("model.recognizer", "data.label_filter")),
    # feature-level bridge: SR features -> the sequence [T, B, D] the recognizer's CNN would make (D: its last
    # width), or with the cnn adapter the map of its first layer (that layer's width)
    "adapter": PartSpec(output="sequence", reads=("sr",), needs=("sr", "recognizer"),
                        config=("model.adapter", "model.sr.channels", "data.lr_height",
                                "model.recognizer.cnn_channels")),
}
PART_NAMES = tuple(PARTS)


def source_of(name: str, present: Collection[str]) -> Optional[str]:
    """The part whose output part `name` reads in a model with parts `present`; None: the model's input."""
    return next((part for part in PARTS[name].reads if part in present), None)


def runs(name: str, present: Collection[str]) -> bool:
    """Whether part `name` has an input in a model with parts `present`: the output of a part it reads, or the
    model's input, which only the first `runs_first` part reads (a recognizer beside an sr part without head or
    adapter has none: the model's input is LR images, read by sr)."""
    if source_of(name, present) is not None:
        return True
    return name == next((p for p in PART_NAMES if p in present and PARTS[p].runs_first), None)


def run_order(present: Collection[str]) -> list[str]:
    """The parts of `present` that run, each after the part it reads (sr, head, adapter, recognizer)."""
    order: list[str] = []
    pending = [p for p in PART_NAMES if p in present and runs(p, present)]
    while pending:
        ready = next(p for p in pending if source_of(p, present) is None or source_of(p, present) in order)
        order.append(ready)
        pending.remove(ready)
    return order


def upstream(name: str, present: Collection[str]) -> set[str]:
    """`name` and every part its input comes from in a model with parts `present` (the parts a loss on its output
    reaches)."""
    reached = set()
    part: Optional[str] = name
    while part is not None:
        reached.add(part)
        part = source_of(part, present)
    return reached
