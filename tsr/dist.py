"""Distributed context read from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE).

Without torchrun everything runs single-process: rank 0 of a world of 1, and the collective helpers below are
no-ops, so the same code path serves one CPU process, gloo on CPU and nccl on GPUs.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.distributed as dist

from tsr.errors import TsrError


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else int(os.environ.get("RANK", 0))


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def init(device: str = "auto", setting: str = "--device") -> torch.device:
    """This process's device, and under torchrun (WORLD_SIZE > 1) the process group: nccl on CUDA, gloo on CPU.

    device: "auto" (cuda:LOCAL_RANK when CUDA is available, else cpu) | "cuda" | "cpu"; `setting` names where it
    came from in errors (a flag, or train.device).
    """
    if device not in ("auto", "cuda", "cpu"):
        raise TsrError(f"{setting} must be auto, cuda or cpu, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise TsrError(f"{setting} is cuda, but this torch {torch.__version__} sees no CUDA device "
                       f"(CUDA build: {torch.version.cuda}); use auto or cpu")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank() >= torch.cuda.device_count():
            raise TsrError(f"LOCAL_RANK {local_rank()} but only {torch.cuda.device_count()} CUDA devices are visible; "
                           "start at most that many processes per node (torchrun --nproc_per_node)")
        chosen = torch.device("cuda", local_rank())
        torch.cuda.set_device(chosen)
    else:
        chosen = torch.device("cpu")
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not is_initialized():
        # device_id binds nccl's communicator to this process's GPU at once (no guessing, no hang at the first
        # collective); gloo takes CPU tensors.
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=chosen if use_cuda else None)
    return chosen


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: str = "auto", setting: str = "--device") -> Iterator[torch.device]:
    """`init` on entry; on a normal exit all ranks meet at a barrier before the process group is destroyed (a rank
    tearing down gloo while another still finishes its last collective can abort at exit: "terminate called
    without an active exception"). After an error there is no barrier: the other ranks may be stuck in a
    collective, and torchrun stops them."""
    chosen = init(device, setting)
    yield chosen
    barrier()
    shutdown()


def barrier() -> None:
    if is_initialized() and world_size() > 1:
        dist.barrier()


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank. Each rank's last training forward
    updated them from its own batch; validation and saving must see one model, the one rank 0 saves."""
    if is_initialized() and world_size() > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def all_gather_object(obj: Any) -> list:
    """[obj of rank 0, obj of rank 1, ...]; [obj] single-process."""
    if not (is_initialized() and world_size() > 1):
        return [obj]
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def is_main() -> bool:
    """The one process that logs, writes tables and saves checkpoints."""
    return rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (no-op single-process); returns it for chaining. A CPU tensor goes through
    this process's GPU under nccl (which reduces CUDA tensors only); gloo reduces it where it is."""
    if is_initialized() and world_size() > 1:
        if dist.get_backend() == "nccl" and not tensor.is_cuda:
            on_gpu = tensor.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
            tensor.copy_(on_gpu.cpu())
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard_batches(length: int, batch_size: int) -> list[range]:
    """This rank's whole batches of `range(length)`: the contiguous batches of `batch_size` one process would form
    (the last one shorter), dealt round-robin to the ranks. No sample is padded or repeated, so summed counts
    over ranks equal `length` exactly, and every batch is the same as single-process (per-batch metrics such as
    TextZoom's pooled PSNR reduce to the single-process figure)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = range(0, length, batch_size)[rank()::world_size()]
    return [range(start, min(start + batch_size, length)) for start in starts]
