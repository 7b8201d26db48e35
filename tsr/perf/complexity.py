"""Model complexity in the AIM 2020 efficient-SR conventions: parameters, FLOPs (forward, 2 per multiply-add,
counted by torch.utils.flop_counter; TSRN's and CRNN's recurrent layers are counted through the matrix products
they run on CPU), activations (elements of every Conv2d / Linear output) and latency, per part and in total."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tsr.engine.timing import timed
from tsr.models.parts import run_order
from tsr.models.wrapper import FullModel


@dataclass
class PartCost:
    name: str
    params: int
    flops: int            # per image, forward
    activations: int      # per image: elements of Conv2d / Linear outputs
    latency_ms: float     # per batch of `batch` images, forward, eval mode


def _part_calls(model: FullModel, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """Each part's forward on the input it gets inside the full model (inputs: LR, or HR for a recognizer alone;
    the other parts' outputs computed once, outside timing), in the order the model runs them."""
    inputs = lr if "sr" in model else hr
    with torch.no_grad():
        out = model(inputs)
    return {name: partial(model.run_part, name, inputs, out) for name in run_order(model.keys())}


def _activations(module: nn.Module, call: Callable[[], torch.Tensor]) -> int:
    count = 0

    def hook(_module, _inputs, output):
        nonlocal count
        count += output.numel()

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        call()
    finally:
        for handle in handles:
            handle.remove()
    return count


@torch.no_grad()
def measure(model: FullModel, lr_shape: tuple[int, ...], hr_shape: tuple[int, ...], batch: int = 1,
            device: torch.device = torch.device("cpu"), repeats: int = 10) -> list[PartCost]:
    """Costs of every part of `model` (eval mode) for inputs LR [C, h, w] / HR [C, H, W] (per image), plus a
    'total' row. FLOPs and activations are counted on one image on CPU; latency is timed on `device` at `batch`."""
    model = model.eval()
    costs = []
    cpu_calls = _part_calls(model.cpu(), torch.rand(1, *lr_shape), torch.rand(1, *hr_shape))
    for name, call in cpu_calls.items():
        with FlopCounterMode(display=False) as counter:
            call()
        part = model[name]
        costs.append(PartCost(name, sum(p.numel() for p in part.parameters()), counter.get_total_flops(),
                              _activations(part, call), 0.0))
    model.to(device)
    calls = _part_calls(model, torch.rand(batch, *lr_shape, device=device), torch.rand(batch, *hr_shape, device=device))
    for cost in costs:
        cost.latency_ms = timed(calls[cost.name], repeats, device) * 1e3
    costs.append(PartCost("total", sum(c.params for c in costs), sum(c.flops for c in costs),
                          sum(c.activations for c in costs), sum(c.latency_ms for c in costs)))
    return costs


def render(costs: list[PartCost], batch: int, device: torch.device) -> str:
    """Markdown table of `measure`'s rows."""
    lines = [f"| part | params | GFLOPs / image | activations (M) / image | latency (ms) / batch of {batch} on {device} |",
             "|---|---:|---:|---:|---:|"]
    for c in costs:
        lines.append(f"| {c.name} | {c.params:,} | {c.flops / 1e9:.3f} | {c.activations / 1e6:.3f} | {c.latency_ms:.2f} |")
    return "\n".join(lines)
