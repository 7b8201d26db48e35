"""Timers for `tsr bench`, `tsr profile` and the latency figures (tsr.perf.latency), CUDA synchronised: `timed`, a
warm-up call then the mean of `repeats` calls; `call_seconds`, one call on its own (for medians)."""
from __future__ import annotations

import time
from typing import Callable, Optional

import torch


def timed(call: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Seconds per call. The warm-up call pays for allocator growth and cuDNN's algorithm search."""
    call()

    def calls():                 # results dropped as they come: a list of them would hold every output in memory
        for _ in range(repeats):
            call()

    return call_seconds(calls, device) / repeats


def call_seconds(call: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call, the device's queued work finished before and after it."""
    _synchronize(device)
    start = time.perf_counter()
    call()
    _synchronize(device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Throughput:
    """Images/s of the training steps a run has timed: over all of them, and `steady` over those after the first
    `warmup` (cuDNN's algorithm search, torch.compile, worker start-up), the figure to compare GPU counts by."""

    def __init__(self, warmup: int = 5):
        self.warmup, self.steps = warmup, 0
        self.images = self.seconds = 0.0
        self.images_steady = self.seconds_steady = 0.0

    def add(self, images: int, seconds: float) -> None:
        self.steps += 1
        self.images += images
        self.seconds += seconds
        if self.steps > self.warmup:
            self.images_steady += images
            self.seconds_steady += seconds

    @property
    def rate(self) -> float:
        return self.images / max(self.seconds, 1e-9)

    @property
    def steady(self) -> Optional[float]:
        return self.images_steady / self.seconds_steady if self.seconds_steady > 0 else None
