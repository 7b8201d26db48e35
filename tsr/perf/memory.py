"""Peak tensor memory of one call, on any device: what `tsr bench` reports beside each speed.

CUDA's caching allocator keeps the statistic (torch.cuda.max_memory_allocated). The CPU allocator keeps none, and
the process's resident size says little (malloc keeps freed pages, and the first figure of a run would pay for
everything the second reuses), so on CPU the tensors themselves are counted: every storage that exists before the
call (parameters, gradients, optimizer states, the batch) and every storage an operator creates during it
(activations saved for backward, gradients, temporaries), each until it is freed. oneDNN's internal scratch
buffers are not tensors and are not counted; the CUDA figure includes cuDNN workspaces.
"""
from __future__ import annotations

import weakref
from typing import Callable, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

MB = 2**20


class _LiveStorages(TorchDispatchMode):
    """Bytes of the distinct storages alive on `device`, and their maximum since the mode was entered."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device_type = device.type
        self.live: dict[int, int] = {}              # storage address -> bytes
        self.current = self.peak = 0

    def track(self, value) -> None:
        if not isinstance(value, torch.Tensor) or value.device.type != self.device_type:
            return
        storage = value.untyped_storage()
        key = storage.data_ptr()
        if key in self.live or storage.nbytes() == 0:   # a view, an in-place result, or already counted
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._freed, key)

    def _freed(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_leaves(out):
            self.track(value)
        return out


def peak_memory_mb(call: Callable[[], object], device: torch.device, existing: Iterable[torch.Tensor]) -> float:
    """Peak MB of tensor memory on `device` during one `call()`, counting the `existing` tensors it works on
    (model state, optimizer state, inputs) from the start. Run it outside timings: on CPU every operator
    passes through Python."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / MB
    mode = _LiveStorages(device)
    for tensor in existing:
        mode.track(tensor)
    with mode:
        call()
    return mode.peak / MB


def state_tensors(*objects) -> list[torch.Tensor]:
    """Every tensor held by modules (parameters, their gradients, buffers), optimizers (states) and plain
    containers (a batch dict)."""
    tensors = []
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            tensors += [p for p in obj.parameters()] + [p.grad for p in obj.parameters() if p.grad is not None]
            tensors += list(obj.buffers())
        elif isinstance(obj, torch.optim.Optimizer):
            tensors += [v for state in obj.state.values() for v in tree_leaves(state) if isinstance(v, torch.Tensor)]
        else:
            tensors += [v for v in tree_leaves(obj) if isinstance(v, torch.Tensor)]
    return tensors
