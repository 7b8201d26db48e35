"""The one evaluator: word accuracy, PSNR and SSIM per test split for several rows (bicubic, HR, models).

Used by validation during training, by `tsr eval` and by the demo, so every number tsr prints comes from here.
Each batch is read once and judged for every row. Under torchrun each rank takes a strided, unpadded share of
every split and the sums are all-reduced, so counts are exact (no DistributedSampler padding counted twice).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from tsr import dist
from tsr.data.lmdb_dataset import collate
from tsr.data.transforms import bicubic_upscale
from tsr.metrics.aggregate import SplitSums
from tsr.metrics.image import psnr, ssim

# images [B,C,h,w] -> predicted words
Recognizer = Callable[[torch.Tensor], Sequence[str]]


@dataclass
class Row:
    """One row of the result tables: how its images are made from a batch (lr [B,C,16,64], hr [B,C,32,128]) and
    whether they are compared with HR (PSNR/SSIM). The HR row is not: it only gives the recognizer's upper bound.

    With `reads_own_text`, `images(lr, hr)` returns (images, words): the row's model reads its text itself (a
    feature-level model: its recognizer reads SR features through the adapter, not the SR image) and the shared
    recognizer is not asked.
    """

    name: str
    images: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, Sequence[str]]]
    compare_to_hr: bool = True
    reads_own_text: bool = False


def bicubic_row() -> Row:
    return Row("bicubic", lambda lr, hr: bicubic_upscale(lr, hr.shape[-2:]))


def hr_row() -> Row:
    return Row("HR", lambda lr, hr: hr, compare_to_hr=False)


def model_row(name: str, super_resolve: Callable[[torch.Tensor], torch.Tensor], reads_own_text: bool = False) -> Row:
    """`super_resolve(lr)` -> SR images, or (SR images, words) with `reads_own_text`."""
    return Row(name, lambda lr, hr: super_resolve(lr), reads_own_text=reads_own_text)


@torch.no_grad()
def evaluate(rows: Sequence[Row], splits: Mapping[str, Dataset], recognizer: Optional[Recognizer] = None,
             batch_size: int = 64, num_workers: int = 0, device: str | torch.device = "cpu",
             on_batch: Optional[Callable[[str, dict, dict, dict], None]] = None) -> list[tuple[str, dict]]:
    """Evaluate every row on every split.

    Returns [(row name, {split: dict(n, corrupt, acc, ned, psnr, ssim)})] in row order; acc/ned are None without a
    recognizer, psnr/ssim None for rows not compared with HR. `on_batch(split, batch, images_by_row, words_by_row)`
    lets a caller keep samples and predictions (e.g. for picture grids) without a second pass.
    """
    device = torch.device(device)
    sums = {row.name: {split: SplitSums() for split in splits} for row in rows}
    for split, dataset in splits.items():
        shard = Subset(dataset, list(dist.shard_indices(len(dataset))))
        loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            collate_fn=collate, pin_memory=device.type == "cuda")
        for batch in loader:
            images_by_row, words_by_row = _judge_batch(rows, batch, recognizer, device,
                                                       {r.name: sums[r.name][split] for r in rows})
            if on_batch is not None and images_by_row:
                on_batch(split, batch, images_by_row, words_by_row)
    return [(row.name, {split: _reduced(sums[row.name][split]).result() for split in splits}) for row in rows]


def _judge_batch(rows, batch, recognizer, device, sums_by_row) -> dict:
    lr, hr = batch["lr"].to(device, non_blocking=True), batch["hr"].to(device, non_blocking=True)
    images_by_row, words_by_row = {}, {}
    for row in rows:
        sums = sums_by_row[row.name]
        sums.corrupt += batch["corrupt"]
        if lr.shape[0] == 0:
            continue
        made = row.images(lr, hr)
        images, words = made if row.reads_own_text else (made, None)
        images = images.float().clamp(0, 1)
        if words is None and recognizer is not None:
            words = recognizer(images)
        images_by_row[row.name] = images
        words_by_row[row.name] = list(words) if words is not None else None
        compare = row.compare_to_hr
        sums.add_batch(
            preds=words_by_row[row.name],
            targets=batch["label"],
            psnr=psnr(images[:, :3], hr[:, :3]) if compare else None,
            ssim=ssim(images[:, :3], hr[:, :3]) if compare else None,
            count=lr.shape[0])
    return images_by_row, words_by_row


def _reduced(sums: SplitSums) -> SplitSums:
    return SplitSums.from_tensor(dist.all_reduce_sum(sums.as_tensor()))
