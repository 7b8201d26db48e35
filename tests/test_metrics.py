import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from tsr.metrics.aggregate import SplitSums, average_splits
from tsr.metrics.image import PSNR_MAX, psnr, ssim
from tsr.metrics.text import normalize_for_accuracy, normalized_edit_distance, word_correct


def test_accuracy_compares_lowercase_alphanumerics_only():
    assert normalize_for_accuracy("Hello, World-2!") == "helloworld2"
    assert word_correct("Hello!", "hello")
    assert not word_correct("hell0", "hello")
    assert word_correct("", "!!")


def test_normalized_edit_distance_by_hand():
    assert normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_edit_distance("ABC", "abc") == 0.0
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("", "abcd") == 1.0


def test_psnr_of_known_mse():
    hr = torch.zeros(2, 3, 32, 128)
    sr = hr.clone()
    sr[0] += 0.1                                   # mse 0.01 -> 20 dB
    sr[1, :, :16] += 0.2                           # mse 0.04 / 2 = 0.02 -> 16.99 dB
    assert psnr(sr, hr).tolist() == pytest.approx([20.0, 10 * math.log10(50)], abs=1e-4)
    assert psnr(hr, hr).tolist() == [PSNR_MAX, PSNR_MAX]
    with pytest.raises(ValueError, match="same shape"):
        psnr(sr, hr[:, :, :16])


def _skimage_ssim(a, b):
    return [structural_similarity(x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy(),
                                  channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for x, y in zip(a, b)]


@pytest.mark.parametrize("size", [(32, 128), (16, 64)])
def test_ssim_matches_scikit_image(size):
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 3, *size, generator=g)
    # structured images too: bars and a gradient, degraded by blur-like averaging and noise
    hr[1] = (torch.arange(size[1]) % 8 < 4).float().expand(3, *size)
    hr[2] = torch.linspace(0, 1, size[1]).expand(3, *size)
    sr = (0.7 * hr + 0.3 * hr.roll(1, dims=-1) + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    ours = ssim(sr, hr)
    assert ours.tolist() == pytest.approx(_skimage_ssim(sr, hr), abs=1e-4)
    assert ssim(hr, hr).tolist() == pytest.approx([1.0] * 3, abs=1e-6)


def test_split_sums_results_and_reduction_round_trip():
    sums = SplitSums()
    sums.add_batch(3, preds=["cat", "Dog", "x"], targets=["cat", "dog", "yy"],
                   psnr=torch.tensor([20.0, 30.0, 40.0]), ssim=torch.tensor([0.5, 0.6, 0.7]))
    sums.corrupt += 2
    r = SplitSums.from_tensor(sums.as_tensor()).result()
    assert r == pytest.approx({"n": 3, "corrupt": 2, "acc": 200 / 3, "ned": 1 / 3, "psnr": 30.0, "ssim": 0.6})
    # a row without recognizer / without image comparison reports None, not 0
    bare = SplitSums()
    bare.add_batch(4)
    assert bare.result() == {"n": 4, "corrupt": 0, "acc": None, "ned": None, "psnr": None, "ssim": None}
    with pytest.raises(ValueError, match="need 2 predictions"):
        bare.add_batch(2, preds=["a"], targets=["a", "b"])


def test_average_is_sample_weighted():
    results = {"easy": {"n": 100, "corrupt": 1, "acc": 90.0, "ned": 0.1, "psnr": 24.0, "ssim": 0.9},
               "medium": {"n": 50, "corrupt": 0, "acc": 60.0, "ned": 0.3, "psnr": 20.0, "ssim": 0.7},
               "hard": {"n": 50, "corrupt": 0, "acc": 30.0, "ned": 0.5, "psnr": 18.0, "ssim": 0.5}}
    a = average_splits(results)
    assert a == pytest.approx({"n": 200, "corrupt": 1, "acc": 67.5, "ned": 0.25, "psnr": 21.5, "ssim": 0.75})
    results["hard"]["acc"] = None
    assert average_splits(results)["acc"] is None
