"""Every pair of a TextZoom LMDB decoded once into memory, for GPUs that train faster than workers decode PNGs.

Held as uint8 at the model's sizes (tsr.data.transforms.to_uint8: RGB plus the 0/1 mask), so a cached item is
bit-identical to a fresh read and costs ~20 KB a pair: TextZoom's 17,367 training pairs take ~350 MB. Decoded
by worker processes into the main process's arrays before the training DataLoader starts its workers, which
inherit them through fork and share the pages (nothing writes to them). Under the spawn or forkserver start
methods the arrays travel through shared memory (/dev/shm must hold them; Docker's default 64 MB does not).
Unreadable records stay unreadable: `get` returns None for them, as a fresh read would.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger("tsr.data")
DECODE_BATCH = 256


class _Decoder(Dataset):
    """Index -> (index, read(index)), so that DataLoader workers decode in parallel."""

    def __init__(self, read: Callable[[int], Optional[tuple]], length: int, hr_shape: tuple, lr_shape: tuple):
        self.read, self.length, self.hr_shape, self.lr_shape = read, length, hr_shape, lr_shape

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        return i, self.read(i)

    def stack(self, items: list) -> tuple[torch.Tensor, ...]:
        """A worker's batch as four tensors (indices, hr, lr, readable): each tensor a worker sends costs file
        descriptors, and a batch of 2 x 256 small ones exhausts a 1,024 limit."""
        blank = (torch.zeros(self.hr_shape, dtype=torch.uint8), torch.zeros(self.lr_shape, dtype=torch.uint8))
        pairs = [pair if pair is not None else blank for _, pair in items]
        return (torch.tensor([i for i, _ in items]), torch.stack([hr for hr, _ in pairs]),
                torch.stack([lr for _, lr in pairs]), torch.tensor([pair is not None for _, pair in items]))


class DecodedPairs:
    def __init__(self, hr: torch.Tensor, lr: torch.Tensor, readable: torch.Tensor):
        self.hr, self.lr, self.readable = hr, lr, readable

    @classmethod
    def build(cls, read: Callable[[int], Optional[tuple]], length: int, hr_shape: tuple, lr_shape: tuple,
              workers: int, name: str) -> "DecodedPairs":
        """`read(i)` -> (hr, lr) uint8 of shapes hr_shape / lr_shape, or None when record i is unreadable."""
        started = time.perf_counter()
        hr = torch.zeros(length, *hr_shape, dtype=torch.uint8)
        lr = torch.zeros(length, *lr_shape, dtype=torch.uint8)
        readable = torch.zeros(length, dtype=torch.bool)
        decoder = _Decoder(read, length, hr_shape, lr_shape)
        # a private generator: building the cache draws nothing from the global RNG a resumed run restored
        loader = DataLoader(decoder, batch_size=DECODE_BATCH, num_workers=workers, collate_fn=decoder.stack,
                            generator=torch.Generator())
        for indices, hr_batch, lr_batch, ok in loader:
            hr[indices], lr[indices], readable[indices] = hr_batch, lr_batch, ok
        cache = cls(hr, lr, readable)
        log.info("%s: decoded %d pairs into memory (%.0f MB, %d unreadable) in %.1f s", name, length,
                 cache.nbytes / 2**20, length - int(readable.sum()), time.perf_counter() - started)
        return cache

    @property
    def nbytes(self) -> int:
        return self.hr.nbytes + self.lr.nbytes + self.readable.nbytes

    def get(self, i: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        return (self.hr[i], self.lr[i]) if self.readable[i] else None
