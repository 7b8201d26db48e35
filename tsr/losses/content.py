"""Text content loss: the frozen recognizer's CNN features of the SR image should match those of the HR image
(a perceptual loss with a text recognizer as the feature network, as in TPGSR / Text Gestalt). Matching features
of the whole HR image constrains every stroke the recognizer looks at, so it is less prone than CTC to images
that only this recognizer reads.

`train.content_layers` adds intermediate activations of the recognizer (`layer_outputs`) to its final CNN
sequence, each term weighing alike. Early layers see strokes and edges that any reader sees; the final sequence
alone is what this recognizer makes of them. In the demo the CRNN's relu1 / relu3 / relu5 beside the sequence
cost 0.03 dB against the sr stage instead of 0.22, and the independent reader read the images better (README,
"Joint training that pays?").
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from tsr.config import ConfigError


def check_layers(recognizer: nn.Module, names: Sequence[str]) -> None:
    """ConfigError unless every name is a submodule of `recognizer` (dotted, as named_modules gives them)."""
    modules = dict(recognizer.named_modules())
    missing = [n for n in names if n not in modules or not n]
    if missing:
        activations = [n for n, m in modules.items() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU))]
        raise ConfigError(f"config key 'train.content_layers' names {missing}, not modules of the recognizer "
                          f"{type(recognizer).__name__}; its activations: {activations}")


@contextmanager
def layer_outputs(recognizer: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward of `recognizer` stores the output of each named submodule in the yielded
    dict (the last call's). Name activations (ReLU outputs): an output that a later in-place op changes would
    break backward."""
    modules = dict(recognizer.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    hooks = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
             for name in names]
    try:
        yield outputs
    finally:
        for hook in hooks:
            hook.remove()


class ContentLoss(nn.Module):
    """student [T, B, D] (recognizer.encode of the SR image), target [T, B, D] (of the HR image) ->
    sum((student - target)^2) / (sum(target^2) + eps), float32: the squared error relative to the target's energy,
    so its size (about 1 for a blank SR image) does not depend on the recognizer's feature scale. The target
    gets no gradient."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if student.shape != target.shape:
            raise ValueError(f"content loss: SR features {tuple(student.shape)} and HR features "
                             f"{tuple(target.shape)} differ")
        target = target.detach().float()
        return ((student.float() - target) ** 2).sum() / ((target ** 2).sum() + self.eps)
