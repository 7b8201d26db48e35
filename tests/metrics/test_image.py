import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

import tsr.metrics.image as image_metrics
from tsr.metrics.image import PSNR_MAX, psnr, ssim


def test_psnr_of_known_mse():
    hr = torch.zeros(2, 3, 32, 128)
    sr = hr.clone()
    sr[0] += 0.1                   # mse 0.01 -> 20 dB
    sr[1, :, :16] += 0.2           # mse 0.04 over half the pixels = 0.02 -> 10 log10(50) = 16.99 dB
    assert psnr(sr, hr).tolist() == pytest.approx([20.0, 10 * math.log10(50)], abs=1e-4)


def test_psnr_of_identical_images_is_clamped_and_float32():
    hr = torch.rand(3, 3, 32, 128, dtype=torch.float64)
    out = psnr(hr, hr)
    assert out.dtype == torch.float32 and out.tolist() == [PSNR_MAX] * 3 == [100.0] * 3


def test_shape_errors():
    a = torch.rand(2, 3, 32, 128)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[:, :, :16])
    with pytest.raises(ValueError, match=r"\[B,C,H,W\]"):
        ssim(a[0], a[0])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[..., :8, :8], a[..., :8, :8])


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return [structural_similarity(x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy(),
                                  channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for x, y in zip(a, b)]


def _structured_hr(n: int, size: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    """Text-like images: vertical strokes, a horizontal gradient, a dark 'word' box on a coloured background."""
    h, w = size
    hr = torch.rand(n, 3, h, w, generator=g)
    hr[0] = (torch.arange(w) % 8 < 3).float().expand(3, h, w)
    hr[1] = torch.linspace(0, 1, w).expand(3, h, w)
    hr[2] = torch.tensor([0.9, 0.8, 0.3]).view(3, 1, 1).expand(3, h, w).clone()
    hr[2, :, h // 4: 3 * h // 4, w // 8: 7 * w // 8] = 0.1
    return hr


def _degrade(hr: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return (0.7 * hr + 0.3 * hr.roll(1, dims=-1) + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("size", [(32, 128), (16, 64)])
def test_ssim_matches_scikit_image_on_random_and_structured_images(size):
    g = torch.Generator().manual_seed(0)
    hr = _structured_hr(4, size, g)  # image 3 stays uniform noise
    sr = _degrade(hr, g)
    assert ssim(sr, hr).tolist() == pytest.approx(_skimage_ssim(sr, hr), abs=1e-4)
    assert ssim(hr, hr).tolist() == pytest.approx([1.0] * 4, abs=1e-6)


def test_ssim_matches_scikit_image_on_upscaled_lr():
    # the bicubic row: 16x64 LR upscaled to 32x128, compared with HR
    g = torch.Generator().manual_seed(1)
    hr = _structured_hr(4, (32, 128), g)
    lr = F.interpolate(hr, size=(16, 64), mode="area")
    sr = F.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    ours = ssim(sr, hr)
    assert ours.tolist() == pytest.approx(_skimage_ssim(sr, hr), abs=1e-4)
    assert float(ours.max()) < 1.0


def test_ssim_dtype_chunking_and_empty_batch(monkeypatch):
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(5, 3, 16, 64, generator=g, dtype=torch.float64)
    sr = _degrade(hr, g)
    whole = ssim(sr, hr)
    assert whole.dtype == torch.float32 and whole.shape == (5,)
    monkeypatch.setattr(image_metrics, "SSIM_CHUNK", 2)  # 3 passes of 2, 2, 1 images
    assert torch.allclose(ssim(sr, hr), whole, atol=1e-6)
    assert ssim(hr[:0], hr[:0]).shape == (0,) and psnr(hr[:0], hr[:0]).shape == (0,)
    assert np.isfinite(whole.numpy()).all()
