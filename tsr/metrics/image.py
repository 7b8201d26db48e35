"""Image metrics on batches: PSNR and SSIM per image, and TextZoom's batch-pooled PSNR; RGB in [0, 1] at HR size
(a caller with TextZoom's 4th mask channel passes [:, :3]). Computed in float32 whatever the input dtype, on the
input's device, without grad needs. Which of them a table shows is the protocol's choice (tsr.metrics.protocol).

SSIM follows Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), per channel,
population (co)variances, C1 = 0.01^2, C2 = 0.03^2, then the mean over channels. Without the border it is what scikit-image computes with
`gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1` (mean over the valid region, where
the window fits; verified to 1e-4 in tests/metrics/test_image.py). With the border it is TextZoom's: the moments
are filtered with zero padding of 5, so the mean runs over every pixel ('same' size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Identical images have infinite PSNR. Per-image values are clamped here, so averages over a split stay finite and
# an HR-vs-HR comparison reads 100.00 dB (an MSE of 1e-10, far below 8-bit quantisation, ~1e-6 at best).
PSNR_MAX = 100.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's truncation, window 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
# Images per SSIM pass: bounds the memory of the 15 filtered moment planes per image (a whole 4,373-image split
# at once would need several GB) and keeps the working set cache-sized on CPU.
SSIM_CHUNK = 64


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.dim() != 4 or sr.shape != hr.shape:
        raise ValueError(f"expected two [B,C,H,W] batches of the same shape, "
                         f"got {tuple(sr.shape)} and {tuple(hr.shape)}")


def psnr(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """sr, hr [B,C,H,W] in [0,1] -> [B] float32 PSNR in dB (data range 1, MSE over C,H,W), clamped at PSNR_MAX."""
    _check_pair(sr, hr)
    mse = (sr.float() - hr.float()).pow(2).flatten(1).mean(dim=1)
    return (10 * torch.log10(1.0 / mse)).clamp(max=PSNR_MAX)


def batch_psnr(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """TextZoom's PSNR of a batch: 20 log10(255 / sqrt(MSE)) with the MSE of x255 values pooled over every pixel,
    channel and image of the batch (= 10 log10(1 / MSE) in [0,1] units), clamped at PSNR_MAX (TextZoom returns
    inf for identical batches)."""
    _check_pair(sr, hr)
    if sr.shape[0] == 0:
        raise ValueError("batch_psnr needs at least one image")
    # images of a batch all have the same size: the pooled MSE is the mean of the per-image MSEs
    mse = (sr.float() - hr.float()).pow(2).flatten(1).mean(dim=1).double().mean()
    return min(float(10 * torch.log10(1.0 / mse)), PSNR_MAX)


def _gaussian_window(device: torch.device) -> torch.Tensor:
    """[11] float32 1-D Gaussian, sum 1 (the 2-D window is its outer product)."""
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, device=device, dtype=torch.float32)
    g = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel (depthwise) with zero padding of SSIM_RADIUS: [N,C,H,W] ->
    [N,C,H,W]. Zero padding is separable too, so this is TextZoom's 2-D conv2d(padding=5) with the outer-product
    window; its interior [5:-5, 5:-5] is the valid-mode filter."""
    c, r = x.shape[1], SSIM_RADIUS
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, r), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(r, 0), groups=c)


def _ssim_chunk(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """-> [N, 2]: SSIM without the border (valid region), with it (every pixel)."""
    # one filter pass over the five moments at once: [N,5C,H,W]
    moments = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mx, my, mxx, myy, mxy = moments.chunk(5, dim=1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my  # population (co)variances
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    r = SSIM_RADIUS
    return torch.stack([s[..., r:-r, r:-r].mean(dim=(1, 2, 3)), s.mean(dim=(1, 2, 3))], dim=1)


def ssim_with_and_without_border(sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sr, hr [B,C,H,W] in [0,1], H and W >= 11 -> (SSIM without the border [B], with it [B]), float32, per channel
    then averaged over channels; one filter pass gives both."""
    _check_pair(sr, hr)
    if min(sr.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * SSIM_RADIUS + 1}x{2 * SSIM_RADIUS + 1}, "
                         f"got {tuple(sr.shape[-2:])}")
    g = _gaussian_window(sr.device)
    parts = [_ssim_chunk(sr[i:i + SSIM_CHUNK].float(), hr[i:i + SSIM_CHUNK].float(), g)
             for i in range(0, sr.shape[0], SSIM_CHUNK)]
    both = torch.cat(parts) if parts else sr.new_zeros(0, 2, dtype=torch.float32)
    return both[:, 0], both[:, 1]


def ssim(sr: torch.Tensor, hr: torch.Tensor, border: bool = False) -> torch.Tensor:
    """sr, hr [B,C,H,W] in [0,1], H and W >= 11 -> [B] float32 SSIM: without the border (scikit-image) or with it
    (`border=True`: TextZoom's zero padding)."""
    return ssim_with_and_without_border(sr, hr)[1 if border else 0]
