"""The two PSNR/SSIM protocols (`eval.protocol`), and how a batch is scored under both in one pass.

`textzoom` is what TextZoom's code computes (JasonBoy1/TextZoom: src/utils/ssim_psnr.py, the test loop of
src/interfaces/super_resolution.py, src/model/bicubic.py), so that tsr's numbers sit next to the papers':
  - PSNR of a batch = 20 log10(255 / sqrt(MSE)) with the MSE pooled over the RGB channels of the whole batch;
    a split's PSNR is the plain mean over its batches, so it depends on the evaluation batch size;
  - SSIM with an 11x11 Gaussian window (sigma 1.5) per channel and zero padding of 5 ('same' size: the border
    counts), averaged over all pixels, channels and images of a batch, then over the batches;
  - nothing is clamped: the bicubic baseline is F.interpolate(lr, scale_factor=2, mode='bicubic',
    align_corners=True) as it comes, and is measured and read by the recognizer so.
`standard` is per-image: PSNR per image averaged over images, SSIM as scikit-image computes it (valid region,
the 5-pixel border left out); the bicubic baseline is upscaled with align_corners=False and clamped to [0,1].

Both are computed for every batch (tsr.engine.evaluator), so results record both; the chosen one fills the
tables' PSNR/SSIM columns and picks best_psnr. Names stay importable without torch (config, tables).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

TEXTZOOM, STANDARD = "textzoom", "standard"
PROTOCOLS = (TEXTZOOM, STANDARD)
DEFAULT = TEXTZOOM  # as eval.protocol in tsr/defaults.yaml (a test keeps the two equal)


def check(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"PSNR/SSIM protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    return protocol


def title(protocol: str, batch_size: int) -> str:
    """Short form for table titles: 'textzoom protocol, batches of 64' | 'standard protocol'."""
    return f"{protocol} protocol" + (f", batches of {batch_size}" if check(protocol) == TEXTZOOM else "")


def describe(protocol: str, batch_size: int) -> str:
    """One line saying how the PSNR/SSIM figures were made."""
    if check(protocol) == TEXTZOOM:
        return (f"PSNR/SSIM: eval.protocol=textzoom (TextZoom's code): per batch of {batch_size} in split order, "
                "PSNR of the pooled MSE and SSIM with zero padding (border included), averaged over batches; "
                "bicubic with align_corners=True, unclamped")
    return ("PSNR/SSIM: eval.protocol=standard: per image, SSIM as scikit-image (valid region, no border), "
            "averaged over images; bicubic with align_corners=False, clamped to [0,1]")


def bicubic_upscale(lr: "torch.Tensor", size: Sequence[int], protocol: str) -> "torch.Tensor":
    """lr [B,C,h,w] -> [B,C,*size] float32, the bicubic baseline of `protocol` (the mask channel, when there is
    one, is upscaled like the others, as TextZoom does; metrics read RGB only).

    With align_corners=True the sampling grid depends only on the input and output sizes, so size=(2h, 2w) is
    TextZoom's scale_factor=2."""
    import torch.nn.functional as F

    up = F.interpolate(lr.float(), size=tuple(size), mode="bicubic", align_corners=check(protocol) == TEXTZOOM)
    return up if protocol == TEXTZOOM else up.clamp(0, 1)


def metric_images(images: "torch.Tensor", protocol: str) -> "torch.Tensor":
    """The images `protocol` measures (and the recognizer reads): float32, clamped to [0,1] under `standard`,
    as they come under `textzoom` (TextZoom clamps nothing)."""
    images = images.float()
    return images if check(protocol) == TEXTZOOM else images.clamp(0, 1)


def score_batch(standard: "torch.Tensor", textzoom: "torch.Tensor", hr: "torch.Tensor") -> dict:
    """RGB images [B,3,H,W] as each protocol measures them (often the same tensor) and HR -> the keyword
    arguments of SplitSums.add_batch: psnr, ssim [B] per image (standard), batch_psnr, batch_ssim (textzoom)."""
    import torch

    from tsr.metrics.image import batch_psnr, psnr, ssim_with_and_without_border

    same = standard is textzoom or torch.equal(standard, textzoom)
    without_border, with_border = ssim_with_and_without_border(standard, hr)
    if not same:
        with_border = ssim_with_and_without_border(textzoom, hr)[1]
    # all images of a batch have the same size, so the mean of per-image SSIM means is the batch map's mean
    return {"psnr": psnr(standard, hr), "ssim": without_border,
            "batch_psnr": batch_psnr(textzoom, hr), "batch_ssim": float(with_border.double().mean())}
