"""Training order that survives a restart: DistributedSampler (shuffled by seed + epoch, the same permutation on
every rank, each rank a disjoint share) that can begin an epoch part-way, so a resumed run reads exactly the
samples the interrupted run would have read next."""
from __future__ import annotations

import itertools
from typing import Iterator

from torch.utils.data import Dataset, DistributedSampler


class ResumableDistributedSampler(DistributedSampler):
    """drop_last=True: every rank gets the same number of samples per epoch (a rank with one batch more than the
    others would wait forever in DDP's all-reduce)."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch `epoch`'s permutation, skipping the first `start` samples of this rank's share."""
        super().set_epoch(epoch)
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start must be in [0, {self.num_samples}], got {start}")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start
