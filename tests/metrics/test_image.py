import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

import tsr.metrics.image as image_metrics
from tsr.metrics.image import PSNR_MAX, batch_psnr, psnr, ssim, ssim_with_and_without_border
from tsr.metrics.protocol import score_batch


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


def test_batch_psnr_pools_the_mse_of_the_batch_by_hand():
    hr = torch.zeros(2, 3, 11, 11)
    sr = hr.clone()
    sr[0] += 0.1                   # mse 0.01 -> 20 dB
    sr[1] += 0.2                   # mse 0.04 -> 10 log10(25) = 13.98 dB
    # standard: the mean of per-image PSNR; TextZoom: one PSNR of the pooled MSE 0.025 -> 10 log10(40) = 16.02 dB
    assert psnr(sr, hr).mean().item() == pytest.approx((20 + 10 * math.log10(25)) / 2, abs=1e-4)
    assert batch_psnr(sr, hr) == pytest.approx(10 * math.log10(40), abs=1e-4)
    assert batch_psnr(hr, hr) == PSNR_MAX
    with pytest.raises(ValueError, match="at least one image"):
        batch_psnr(hr[:0], hr[:0])


def _window_mass(n: int) -> list[float]:
    """For each of n positions, the share of the 1-D Gaussian window (11 taps, sigma 1.5) that falls inside
    [0, n): zero padding counts the rest as 0."""
    taps = [math.exp(-(k * k) / (2 * 1.5 ** 2)) for k in range(-5, 6)]
    total = sum(taps)
    return [sum(t for k, t in zip(range(-5, 6), taps) if 0 <= i + k < n) / total for i in range(n)]


def test_ssim_with_and_without_border_of_two_flat_images_by_hand():
    # x = 0.5 and y = 0.25 everywhere. Where the window fits, means are 0.5 / 0.25 and (co)variances 0:
    # SSIM = (2 * 0.125 + C1) / (0.25 + 0.0625 + C1) = 0.2501 / 0.3126 (C2 cancels).
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = torch.full((1, 3, 11, 15), 0.5), torch.full((1, 3, 11, 15), 0.25)
    assert ssim(x, y).item() == pytest.approx(0.2501 / 0.3126, abs=1e-6)
    # With zero padding a pixel whose window holds mass w of the image sees means 0.5w and 0.25w, variances
    # a^2 w(1 - w) and covariance 0.125 w(1 - w): SSIM(w) below, averaged over every pixel of the 11x15 image.
    def ssim_at(w):
        a, b = 0.5, 0.25
        v = w * (1 - w)
        return ((2 * a * b * w * w + c1) * (2 * a * b * v + c2)) / (((a * a + b * b) * w * w + c1)
                                                                     * ((a * a + b * b) * v + c2))
    rows, cols = _window_mass(11), _window_mass(15)
    expected = sum(ssim_at(r * c) for r in rows for c in cols) / (11 * 15)
    assert ssim(x, y, border=True).item() == pytest.approx(expected, abs=1e-6)
    assert expected < 0.2501 / 0.3126 - 0.05       # the border pulls TextZoom's figure well away
    without, with_border = ssim_with_and_without_border(x, y)
    assert (without.item(), with_border.item()) == (ssim(x, y).item(), ssim(x, y, border=True).item())


def _textzoom_formulas(sr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float]:
    """TextZoom's PSNR and SSIM of a batch, written here from their formulas (not from tsr's code): PSNR =
    20 log10(255 / sqrt(MSE of x255 values over the whole batch)); SSIM map with a 2-D 11x11 Gaussian window
    (sigma 1.5) by conv2d with zero padding 5 per channel, mean over the whole batch."""
    sr, hr = sr.double(), hr.double()
    mse = ((sr * 255 - hr * 255) ** 2).mean()
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-coords ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)

    def filt(t):
        return F.conv2d(t, window, padding=5, groups=3)

    mu_x, mu_y = filt(sr), filt(hr)
    var_x, var_y = filt(sr * sr) - mu_x ** 2, filt(hr * hr) - mu_y ** 2
    cov = filt(sr * hr) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(20 * torch.log10(255 / mse.sqrt())), float(ssim_map.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_textzoom_protocol_equals_its_formulas_on_random_images(seed):
    g = torch.Generator().manual_seed(seed)
    hr = _structured_hr(6, (32, 128), g)
    sr = F.interpolate(F.interpolate(hr, size=(16, 64), mode="area"), size=(32, 128), mode="bicubic",
                       align_corners=True)         # TextZoom's bicubic row: unclamped, may leave [0, 1]
    assert float(sr.min()) < 0 or float(sr.max()) > 1
    expected_psnr, expected_ssim = _textzoom_formulas(sr, hr)
    scores = score_batch(sr.clamp(0, 1), sr, hr)
    assert scores["batch_psnr"] == pytest.approx(expected_psnr, abs=1e-4)
    assert scores["batch_ssim"] == pytest.approx(expected_ssim, abs=1e-5)
    # the standard half of the same call measures the clamped images per image, without the border
    assert scores["psnr"].tolist() == pytest.approx(psnr(sr.clamp(0, 1), hr).tolist(), abs=1e-6)
    assert scores["ssim"].tolist() == pytest.approx(_skimage_ssim(sr.clamp(0, 1), hr), abs=1e-4)
