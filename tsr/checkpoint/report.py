"""Loading model weights with a report of exactly what did and did not load."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from tsr.checkpoint.io import unwrap
from tsr.errors import CheckpointError
from tsr.keys import strip_prefixes


@dataclass
class LoadReport:
    """What `load_model_state` did: counts and exact key lists (wrong_shape: (key, checkpoint shape, model shape))."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    source: str = "checkpoint"

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def __str__(self) -> str:
        total = len(self.loaded) + len(self.missing) + len(self.wrong_shape)
        lines = [f"{self.source}: loaded {len(self.loaded)}/{total} model tensors"]
        if self.missing:
            lines.append(f"  missing (left as initialised): {group_keys(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected (ignored): {group_keys(self.unexpected)}")
        for key, ckpt_shape, model_shape in self.wrong_shape:
            lines.append(f"  wrong shape (skipped): {key}: checkpoint {list(ckpt_shape)} vs model {list(model_shape)}")
        return "\n".join(lines)


def group_keys(keys: list[str], max_listed: int = 4) -> str:
    """Compact key lists: per part, a few keys are listed as 'prefix.{a, b}', more as 'prefix.* (N tensors)'."""
    by_part: dict[str, list[str]] = {}
    for key in keys:
        by_part.setdefault(key.split(".", 1)[0], []).append(key)
    chunks = []
    for group in by_part.values():
        prefix = os.path.commonprefix([k.split(".") for k in group])
        stem = ".".join(prefix)
        if len(group) == 1:
            chunks.append(group[0])
        elif len(group) > max_listed:
            chunks.append(f"{stem}.* ({len(group)} tensors)")
        else:
            rests = ", ".join(k[len(stem) + 1:] for k in group)
            chunks.append(f"{stem}.{{{rests}}}" if stem else rests)
    return "; ".join(chunks)


def load_model_state(model: nn.Module, state_dict: Mapping[str, Any], strict: bool = False,
                     source: str = "checkpoint") -> LoadReport:
    """Load `state_dict` (wrapper prefixes stripped) into the unwrapped `model` and report what happened.

    strict=False (starting from other weights): every tensor whose key and shape match is loaded; wrong-shape
    tensors are skipped, never a crash. strict=True (resume): any missing, unexpected or wrong-shape key raises
    CheckpointError listing them, and nothing is loaded.
    """
    model = unwrap(model)
    state = strip_prefixes(state_dict)
    target = model.state_dict()
    report = LoadReport(source=source)
    loadable = {}
    for key, value in state.items():
        if key not in target:
            report.unexpected.append(key)
        elif not isinstance(value, torch.Tensor) or value.shape != target[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else (type(value).__name__,)
            report.wrong_shape.append((key, shape, tuple(target[key].shape)))
        else:
            loadable[key] = value
            report.loaded.append(key)
    report.missing = [key for key in target if key not in state]
    if strict and not report.clean:
        raise CheckpointError(f"strict load refused, the checkpoint does not match the model:\n{report}")
    model.load_state_dict(loadable, strict=False)
    return report
