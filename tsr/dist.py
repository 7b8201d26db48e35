"""Distributed context read from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE).

Without torchrun everything runs single-process: rank 0 of a world of 1, and the collective helpers below are
no-ops, so the same code path serves one CPU process, gloo on CPU and nccl on GPUs.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else int(os.environ.get("RANK", 0))


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """The one process that logs, writes tables and saves checkpoints."""
    return rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (no-op single-process); returns it for chaining."""
    if is_initialized() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard_indices(length: int) -> range:
    """This rank's share of `range(length)`, strided and WITHOUT padding, so summed counts over ranks equal
    `length` exactly (a DistributedSampler pads the last round with repeated samples, which evaluation must not
    count twice)."""
    return range(rank(), length, world_size())
