"""What makes a checkpoint's tensors trustworthy: all finite when written, unchanged when read.

`tensor_digest` is a sha256 over every tensor of a (nested) payload, in traversal order, with its path, dtype,
shape and bytes: written into each checkpoint (key `tensors_sha256`) and compared on load, so flipped bits on a
disk or in a copy are an error instead of silently different weights. The trainer uses the same digest to show
that ranks hold bit-identical weights.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import torch

DIGEST_KEY = "tensors_sha256"


def tensor_digest(obj: Any) -> str:
    """sha256 (hex) over every tensor in `obj` (tensors, dicts, lists, tuples; other values are skipped), with
    each tensor's path, dtype and shape: equal digests = bit-identical tensors in the same places."""
    digest = hashlib.sha256()
    for path, tensor in _tensors(obj, ""):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{path}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _tensors(obj: Any, path: str):
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            if not (path == "" and key == DIGEST_KEY):
                yield from _tensors(value, f"{path}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{path}/{i}")


def non_finite_keys(state: Mapping[str, Any]) -> list[str]:
    """Keys of the floating-point tensors in a state dict that hold NaN or an infinity."""
    return [key for key, value in state.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
