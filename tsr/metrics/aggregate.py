"""Sums that evaluation accumulates per (row, split), reducible across ranks, and the sample-weighted average
over splits (the `A` column, as the TextZoom papers report it)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping, Optional, Sequence

import torch

from tsr.metrics.text import normalized_edit_distance, word_correct


@dataclass
class SplitSums:
    """Running sums for one split. `n` counts judged samples; `corrupt` counts records that could not be read
    (left out of every metric, reported beside them). `n_text` / `n_image` count the samples that carried
    predictions / PSNR-SSIM, so a row without a recognizer reports acc=None rather than 0."""

    n: float = 0
    corrupt: float = 0
    n_text: float = 0
    correct: float = 0
    ned_sum: float = 0
    n_image: float = 0
    psnr_sum: float = 0
    ssim_sum: float = 0

    def add_batch(self, count: int, preds: Optional[Sequence[str]] = None, targets: Optional[Sequence[str]] = None,
                  psnr: Optional[torch.Tensor] = None, ssim: Optional[torch.Tensor] = None) -> None:
        self.n += count
        if preds is not None:
            if targets is None or len(preds) != count or len(targets) != count:
                raise ValueError(f"need {count} predictions and targets, got {len(preds)} and "
                                 f"{None if targets is None else len(targets)}")
            self.n_text += count
            self.correct += sum(word_correct(p, t) for p, t in zip(preds, targets))
            self.ned_sum += sum(normalized_edit_distance(p, t) for p, t in zip(preds, targets))
        if psnr is not None:
            if ssim is None or psnr.numel() != count or ssim.numel() != count:
                raise ValueError(f"need {count} PSNR and SSIM values")
            self.n_image += count
            self.psnr_sum += float(psnr.double().sum())
            self.ssim_sum += float(ssim.double().sum())

    def as_tensor(self) -> torch.Tensor:
        """float64 [8] in field order, for all_reduce(SUM) across ranks."""
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> "SplitSums":
        return cls(*(float(v) for v in values.tolist()))

    def result(self) -> dict:
        """dict(n, corrupt, acc [%], ned, psnr [dB], ssim); a metric nothing was measured for is None."""
        text, image = self.n_text, self.n_image
        return {
            "n": int(self.n), "corrupt": int(self.corrupt),
            "acc": 100.0 * self.correct / text if text else None,
            "ned": self.ned_sum / text if text else None,
            "psnr": self.psnr_sum / image if image else None,
            "ssim": self.ssim_sum / image if image else None,
        }


METRICS = ("acc", "ned", "psnr", "ssim")


def average_splits(results: Mapping[str, dict]) -> dict:
    """Sample-weighted average over splits by n; n and corrupt are summed; a metric missing anywhere is None."""
    total = sum(r["n"] for r in results.values())
    out = {"n": total, "corrupt": sum(r["corrupt"] for r in results.values())}
    for metric in METRICS:
        values = [(r[metric], r["n"]) for r in results.values()]
        if total == 0 or any(v is None for v, n in values if n):
            out[metric] = None
        else:
            out[metric] = sum(v * n for v, n in values if n) / total
    return out
