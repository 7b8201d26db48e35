"""Sums that evaluation accumulates per (row, split), reducible across ranks, and the sample-weighted average
over splits (the `A` column, as the TextZoom papers report it).

Image metrics are summed under both protocols (tsr.metrics.protocol): per image (standard) and per batch
(textzoom: a split's value is the mean over its batches). Evaluation gives every batch whole to one rank, so the
per-batch sums too reduce across ranks to the single-process figure. PSNR is clamped at image.PSNR_MAX, so
identical images add a finite 100 dB and no separate count of infinite values is needed.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from tsr.metrics.protocol import DEFAULT, PROTOCOLS, STANDARD, TEXTZOOM, check
from tsr.metrics.text import normalized_edit_distance, word_correct

if TYPE_CHECKING:  # torch is imported where tensors are made, so tables (and the CLI) stay light
    import torch

METRICS = ("acc", "ned", "psnr", "ssim")
# both protocols' figures, recorded beside the chosen one's psnr / ssim
BY_PROTOCOL = tuple(f"{metric}_{protocol}" for protocol in PROTOCOLS for metric in ("psnr", "ssim"))


@dataclass
class SplitSums:
    """Running sums for one split. `n` counts judged samples; `corrupt` counts records that could not be read
    (left out of every metric, reported beside them). `n_text` / `n_image` count the samples that carried
    predictions / PSNR-SSIM, so a row without a recognizer reports acc=None rather than 0. `psnr_sum` / `ssim_sum`
    add per-image values (standard protocol), `batch_psnr_sum` / `batch_ssim_sum` one value per batch of
    `batches` (textzoom protocol)."""

    n: float = 0
    corrupt: float = 0
    n_text: float = 0
    correct: float = 0
    ned_sum: float = 0
    n_image: float = 0
    psnr_sum: float = 0
    ssim_sum: float = 0
    batches: float = 0
    batch_psnr_sum: float = 0
    batch_ssim_sum: float = 0

    def add_batch(self, count: Optional[int] = None, *, preds: Optional[Sequence[str]] = None,
                  targets: Optional[Sequence[str]] = None, psnr: Optional["torch.Tensor"] = None,
                  ssim: Optional["torch.Tensor"] = None, batch_psnr: Optional[float] = None,
                  batch_ssim: Optional[float] = None) -> None:
        """Add one batch of `count` samples: predicted words with their targets (targets alone are ignored, so a
        caller may always pass its labels), per-image psnr and ssim [count] with the batch's batch_psnr and
        batch_ssim (all four or none; tsr.metrics.protocol.score_batch makes them). `count` may be left out when
        words or images are given; pass it alone to count samples judged by neither (e.g. the HR row without a
        recognizer)."""
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
        if (psnr is None) != (batch_psnr is None) or (psnr is None) != (batch_ssim is None):
            raise ValueError("per-image psnr/ssim and the batch's batch_psnr/batch_ssim go together, got "
                             f"{'per-image values' if psnr is not None else 'no per-image values'} and batch values "
                             f"{batch_psnr}, {batch_ssim}")
        self.n += count
        if preds is not None:
            self.n_text += count
            self.correct += sum(word_correct(p, t) for p, t in zip(preds, targets))
            self.ned_sum += sum(normalized_edit_distance(p, t) for p, t in zip(preds, targets))
        if psnr is not None:
            self.n_image += count
            self.psnr_sum += float(psnr.double().sum())
            self.ssim_sum += float(ssim.double().sum())
            self.batches += 1
            self.batch_psnr_sum += float(batch_psnr)
            self.batch_ssim_sum += float(batch_ssim)

    def as_tensor(self) -> "torch.Tensor":
        """float64 [11] in field order (n, corrupt, n_text, correct, ned_sum, n_image, psnr_sum, ssim_sum, batches,
        batch_psnr_sum, batch_ssim_sum), for all_reduce(SUM) across ranks. float64 keeps counts exact far beyond any test set."""
        import torch

        return torch.tensor(astuple(self), dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: "torch.Tensor") -> "SplitSums":
        """Inverse of as_tensor (e.g. after the all-reduce)."""
        if values.numel() != len(fields(cls)):
            raise ValueError(f"expected {len(fields(cls))} sums ({', '.join(f.name for f in fields(cls))}), "
                             f"got a tensor of shape {tuple(values.shape)}")
        return cls(*(float(v) for v in values.flatten().tolist()))

    def result(self, protocol: str = DEFAULT, batch_size: Optional[int] = None) -> dict:
        """dict(n, corrupt, acc [%, 0-100], ned [0-1], psnr [dB], ssim [0-1] under `protocol`, psnr_textzoom,
        ssim_textzoom, psnr_standard, ssim_standard, batches, protocol, batch_size (the evaluation's, which the
        textzoom figures depend on)); a metric nothing was measured for is None."""
        text, image, batches = self.n_text, self.n_image, self.batches
        by_protocol = {
            f"psnr_{STANDARD}": self.psnr_sum / image if image else None,
            f"ssim_{STANDARD}": self.ssim_sum / image if image else None,
            f"psnr_{TEXTZOOM}": self.batch_psnr_sum / batches if batches else None,
            f"ssim_{TEXTZOOM}": self.batch_ssim_sum / batches if batches else None,
        }
        return {
            "n": int(self.n), "corrupt": int(self.corrupt),
            "acc": 100.0 * self.correct / text if text else None,
            "ned": self.ned_sum / text if text else None,
            "psnr": by_protocol[f"psnr_{check(protocol)}"],
            "ssim": by_protocol[f"ssim_{protocol}"],
            **by_protocol, "batches": int(batches), "protocol": protocol, "batch_size": batch_size,
        }


def average_splits(results: Mapping[str, dict]) -> dict:
    """{split: result dict} -> one result dict: acc/ned/psnr/ssim (and the per-protocol figures, where the splits
    have them) averaged over splits weighted by n, under either protocol; n, corrupt and batches summed;
    protocol and batch_size kept when the splits agree. A metric that is None in any split with samples is None
    (an average over part of the splits would not be comparable with papers' A column); splits with n == 0 carry
    no weight."""
    total = sum(r["n"] for r in results.values())
    out = {"n": total, "corrupt": sum(r["corrupt"] for r in results.values())}
    present = [key for key in (*BY_PROTOCOL, "batches", "protocol", "batch_size")
               if results and all(key in r for r in results.values())]
    for metric in (*METRICS, *(k for k in present if k in BY_PROTOCOL)):
        weighted = [(r[metric], r["n"]) for r in results.values() if r["n"]]
        if total == 0 or any(v is None for v, _ in weighted):
            out[metric] = None
        else:
            out[metric] = sum(v * n for v, n in weighted) / total
    if "batches" in present:
        out["batches"] = sum(r["batches"] for r in results.values())
    for key in ("protocol", "batch_size"):
        if key in present:
            values = {r[key] for r in results.values()}
            out[key] = values.pop() if len(values) == 1 else None
    return out
