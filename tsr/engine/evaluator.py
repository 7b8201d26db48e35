"""The one evaluator: word accuracy, PSNR and SSIM per test split for several rows (bicubic, HR, models).

Used by validation during training, by `tsr eval` and by the demo, so every number tsr prints comes from here.
Each batch is read once and judged for every row, its PSNR/SSIM under both protocols (tsr.metrics.protocol; the
chosen one fills the tables). Batches are the contiguous batches of `batch_size` a single process forms, in split
order; under torchrun each rank takes whole batches of them and the sums are all-reduced, so counts are exact (no
DistributedSampler padding counted twice) and per-batch figures (textzoom) equal the single-process ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from tsr import dist
from tsr.data.lmdb_dataset import collate
from tsr.metrics.aggregate import SplitSums
from tsr.metrics.protocol import DEFAULT, PROTOCOLS, STANDARD, TEXTZOOM, bicubic_upscale, check, metric_images, \
    score_batch

# images [B,C,h,w] -> predicted words
Recognizer = Callable[[torch.Tensor], Sequence[str]]


@dataclass
class Row:
    """One row of the result tables: how its images are made from a batch (lr [B,C,16,64], hr [B,C,32,128]) and
    whether they are compared with HR (PSNR/SSIM). The HR row is not: it only gives the recognizer's upper bound.

    With `reads_own_text`, `images(lr, hr)` returns (images, words): the row's model reads its text itself (a
    feature-level model: its recognizer reads SR features through the adapter, not the SR image) and the shared
    recognizer is not asked. With `per_protocol`, `images(lr, hr)` returns {protocol: images}: a baseline made
    differently under each PSNR/SSIM protocol (bicubic); the evaluation's protocol gives the images read and shown.
    """

    name: str
    images: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, Sequence[str]]]
    compare_to_hr: bool = True
    reads_own_text: bool = False
    per_protocol: bool = False


def bicubic_row() -> Row:
    return Row("bicubic", lambda lr, hr: {p: bicubic_upscale(lr, hr.shape[-2:], p) for p in PROTOCOLS},
               per_protocol=True)


def hr_row() -> Row:
    return Row("HR", lambda lr, hr: hr, compare_to_hr=False)


def model_row(name: str, super_resolve: Callable[[torch.Tensor], torch.Tensor], reads_own_text: bool = False) -> Row:
    """`super_resolve(lr)` -> SR images, or (SR images, words) with `reads_own_text`."""
    return Row(name, lambda lr, hr: super_resolve(lr), reads_own_text=reads_own_text)


@torch.no_grad()
def evaluate(rows: Sequence[Row], splits: Mapping[str, Dataset], recognizer: Optional[Recognizer] = None,
             batch_size: int = 64, num_workers: int = 0, device: str | torch.device = "cpu",
             on_batch: Optional[Callable[[str, dict, dict, dict], None]] = None,
             protocol: str = DEFAULT, judges: Optional[Mapping[str, Recognizer]] = None) -> list[tuple[str, dict]]:
    """Evaluate every row on every split.

    Returns [(row name, {split: SplitSums.result dict})] in row order: n, corrupt, acc, ned, psnr and ssim under
    `protocol` ('textzoom' | 'standard'; `batch_size` is part of the textzoom one), both protocols' psnr_* and
    ssim_*, protocol and batch_size; acc/ned are None without a recognizer, image metrics None for rows not
    compared with HR. `on_batch(split, batch, images_by_row, words_by_row)` lets a caller keep samples and
    predictions (e.g. for picture grids) without a second pass.

    `judges` ({name: recognizer}, instead of `recognizer`): every judge reads every row; each result dict then also
    holds "judges": {name: {"acc", "ned"}} and its acc/ned are the first judge's; words_by_row holds
    {row: {judge name: words}}. A judge given as None is the rows' own reading: a row that reads its own text
    fills it, the other rows are not read there (acc None).
    """
    if judges is not None and recognizer is not None:
        raise ValueError("evaluate takes either one recognizer or a mapping of judges, not both")
    # sums are kept per row name: two rows of one name would be summed into one row of the tables
    repeated = sorted({row.name for row in rows if sum(other.name == row.name for other in rows) > 1})
    if repeated:
        raise ValueError(f"evaluate: rows {repeated} share a name; give each row a name of its own")
    device, protocol = torch.device(device), check(protocol)
    readers = dict(judges) if judges is not None else {None: recognizer} if recognizer is not None else {}
    names = list(readers) or [None]
    # per row, split and judge: the first judge's sums also carry the image metrics
    sums = {row.name: {split: {name: SplitSums() for name in names} for split in splits} for row in rows}
    for split, dataset in splits.items():
        loader = DataLoader(dataset, batch_sampler=dist.shard_batches(len(dataset), batch_size),
                            num_workers=num_workers, collate_fn=collate, pin_memory=device.type == "cuda")
        for batch in loader:
            images_by_row, words_by_row = _judge_batch(rows, batch, readers, device, protocol,
                                                       {r.name: sums[r.name][split] for r in rows})
            if on_batch is not None and images_by_row:
                on_batch(split, batch, images_by_row, words_by_row if judges is not None else
                         {row: words.get(None) for row, words in words_by_row.items()})
    return [(row.name, {split: _result(sums[row.name][split], judges is not None, protocol, batch_size)
                        for split in splits}) for row in rows]


def _result(sums_by_judge: dict, named: bool, protocol: str, batch_size: int) -> dict:
    results = {name: _reduced(sums).result(protocol, batch_size) for name, sums in sums_by_judge.items()}
    first = next(iter(results.values()))
    if named:
        first = {**first, "judges": {name: {"acc": r["acc"], "ned": r["ned"]} for name, r in results.items()}}
    return first


def _judge_batch(rows, batch, readers, device, protocol, sums_by_row) -> tuple[dict, dict]:
    """One batch through every row: adds to sums_by_row; -> ({row: images read}, {row: {judge name: words}})."""
    lr, hr = batch["lr"].to(device, non_blocking=True), batch["hr"].to(device, non_blocking=True)
    images_by_row, words_by_row = {}, {}
    for row in rows:
        sums = sums_by_row[row.name]
        for judge_sums in sums.values():
            judge_sums.corrupt += batch["corrupt"]
        if lr.shape[0] == 0:
            continue
        made = row.images(lr, hr)
        images, own_words = made if row.reads_own_text else (made, None)
        # what each protocol measures; the evaluation's protocol also gives what the recognizers read (TextZoom
        # feeds its unclamped images to the recognizer too)
        by_protocol = {p: metric_images(images[p] if row.per_protocol else images, p) for p in PROTOCOLS}
        images = by_protocol[protocol]
        words = _words(readers, images, own_words)
        images_by_row[row.name] = images
        words_by_row[row.name] = words
        scores = {}
        if row.compare_to_hr:
            scores = score_batch(by_protocol[STANDARD][:, :3], by_protocol[TEXTZOOM][:, :3], hr[:, :3].float())
        for i, (name, judge_sums) in enumerate(sums.items()):
            judge_sums.add_batch(preds=words.get(name), targets=batch["label"], count=lr.shape[0],
                                 **(scores if i == 0 else {}))
    return images_by_row, words_by_row


def _words(readers: Mapping, images: torch.Tensor, own_words: Optional[Sequence[str]]) -> dict:
    """{reader name: words} for one row's batch. A row that reads its own text (`own_words`) fills the column of
    the own reading: the judge given as None, or without judges the single recognizer's column (key None), which
    it then replaces. A None reader of a row without its own text reads nothing."""
    words = {}
    for name, read in readers.items():
        if own_words is not None and (read is None or name is None):
            words[name] = list(own_words)
        elif read is not None:
            words[name] = list(read(images))
    if not readers and own_words is not None:
        words[None] = list(own_words)
    return words


def _reduced(sums: SplitSums) -> SplitSums:
    return SplitSums.from_tensor(dist.all_reduce_sum(sums.as_tensor()))
