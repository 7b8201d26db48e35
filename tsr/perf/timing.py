"""One timer for `tsr bench` and `tsr profile`: a warm-up call, then `repeats` timed calls, CUDA synchronised."""
from __future__ import annotations

import time
from typing import Callable, Optional

import torch


def timed(call: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, Optional[float]]:
    """(seconds per call, peak CUDA memory in MB during the timed calls, None on CPU). The warm-up call pays for
    allocator growth and cuDNN's algorithm search."""
    call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return (time.perf_counter() - start) / repeats, peak
