"""Sums that evaluation accumulates per (row, split), reducible across ranks, and the sample-weighted average
over splits (the `A` column, as the TextZoom papers report it).

Per-image PSNR is clamped at image.PSNR_MAX inside psnr(), so identical images add a finite 100 dB and no
separate count of infinite values is needed.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from tsr.metrics.text import normalized_edit_distance, word_correct

if TYPE_CHECKING:  # torch is imported where tensors are made, so tables (and the CLI) stay light
    import torch

METRICS = ("acc", "ned", "psnr", "ssim")


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

    def add_batch(self, count: Optional[int] = None, *, preds: Optional[Sequence[str]] = None,
                  targets: Optional[Sequence[str]] = None, psnr: Optional["torch.Tensor"] = None,
                  ssim: Optional["torch.Tensor"] = None) -> None:
        """Add one batch of `count` samples: predicted words with their targets (targets alone are ignored, so a
        caller may always pass its labels), per-image psnr and ssim [count] (both or neither). `count` may be left
        out when words or images are given; pass it alone to count samples judged by neither (e.g. the HR row
        without a recognizer)."""
        if count is None:
            if preds is None and psnr is None:
                raise ValueError("add_batch needs count, words or images to know how many samples it adds")
            count = len(preds) if preds is not None else psnr.numel()
        if preds is not None and (targets is None or not len(preds) == len(targets) == count):
            raise ValueError(f"need {count} predictions and targets, got {None if preds is None else len(preds)} "
                             f"and {None if targets is None else len(targets)}")
        if (psnr is None) != (ssim is None) or (psnr is not None and not psnr.numel() == ssim.numel() == count):
            raise ValueError(f"need {count} PSNR and SSIM values, got {None if psnr is None else psnr.numel()} "
                             f"and {None if ssim is None else ssim.numel()}")
        self.n += count
        if preds is not None:
            self.n_text += count
            self.correct += sum(word_correct(p, t) for p, t in zip(preds, targets))
            self.ned_sum += sum(normalized_edit_distance(p, t) for p, t in zip(preds, targets))
        if psnr is not None:
            self.n_image += count
            self.psnr_sum += float(psnr.double().sum())
            self.ssim_sum += float(ssim.double().sum())

    def as_tensor(self) -> "torch.Tensor":
        """float64 [8] in field order (n, corrupt, n_text, correct, ned_sum, n_image, psnr_sum, ssim_sum), for
        all_reduce(SUM) across ranks. float64 keeps counts exact far beyond any test set."""
        import torch

        return torch.tensor(astuple(self), dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: "torch.Tensor") -> "SplitSums":
        """Inverse of as_tensor (e.g. after the all-reduce)."""
        if values.numel() != len(fields(cls)):
            raise ValueError(f"expected {len(fields(cls))} sums ({', '.join(f.name for f in fields(cls))}), "
                             f"got a tensor of shape {tuple(values.shape)}")
        return cls(*(float(v) for v in values.flatten().tolist()))

    def result(self) -> dict:
        """dict(n, corrupt, acc [%, 0-100], ned [0-1], psnr [dB], ssim [0-1]); a metric nothing was measured for
        is None."""
        text, image = self.n_text, self.n_image
        return {
            "n": int(self.n), "corrupt": int(self.corrupt),
            "acc": 100.0 * self.correct / text if text else None,
            "ned": self.ned_sum / text if text else None,
            "psnr": self.psnr_sum / image if image else None,
            "ssim": self.ssim_sum / image if image else None,
        }


def average_splits(results: Mapping[str, dict]) -> dict:
    """{split: result dict} -> one result dict: acc/ned/psnr/ssim averaged over splits weighted by n; n and
    corrupt summed. A metric that is None in any split with samples is None (an average over part of the
    splits would not be comparable with papers' A column); splits with n == 0 carry no weight."""
    total = sum(r["n"] for r in results.values())
    out = {"n": total, "corrupt": sum(r["corrupt"] for r in results.values())}
    for metric in METRICS:
        weighted = [(r[metric], r["n"]) for r in results.values() if r["n"]]
        if total == 0 or any(v is None for v, _ in weighted):
            out[metric] = None
        else:
            out[metric] = sum(v * n for v, n in weighted) / total
    return out
