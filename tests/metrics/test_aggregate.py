import pytest
import torch

from tsr.metrics.aggregate import SplitSums, average_splits


def test_split_sums_by_hand_under_both_protocols():
    sums = SplitSums()
    sums.add_batch(preds=["cat", "Dog", "x"], targets=["cat", "dog", "yy"],
                   psnr=torch.tensor([20.0, 30.0, 40.0]), ssim=torch.tensor([0.5, 0.6, 0.7]),
                   batch_psnr=24.0, batch_ssim=0.6)
    sums.add_batch(psnr=torch.tensor([10.0]), ssim=torch.tensor([0.2]),   # count inferred from images
                   batch_psnr=10.0, batch_ssim=0.2)
    sums.corrupt += 2
    # acc over the 3 judged words: 2 correct; ned = (0 + 0 + 1) / 3; standard: psnr/ssim over 4 images;
    # textzoom: over 2 batches, each weighing the same whatever its size
    both = {"psnr_standard": 25.0, "ssim_standard": 0.5, "psnr_textzoom": 17.0, "ssim_textzoom": 0.4, "batches": 2}
    assert sums.result("standard", 3) == pytest.approx({"n": 4, "corrupt": 2, "acc": 200 / 3, "ned": 1 / 3,
                                                        "psnr": 25.0, "ssim": 0.5, **both,
                                                        "protocol": "standard", "batch_size": 3})
    textzoom = sums.result("textzoom", 3)
    assert (textzoom["psnr"], textzoom["ssim"], textzoom["protocol"]) == (17.0, pytest.approx(0.4), "textzoom")
    with pytest.raises(ValueError, match="protocol must be one of"):
        sums.result("skimage")


def test_reduction_across_ranks_is_a_plain_sum():
    rank0, rank1, both = SplitSums(), SplitSums(), SplitSums()
    a = dict(preds=["ab", "c"], targets=["ab", "d"], psnr=torch.tensor([21.0, 23.0]), ssim=torch.tensor([0.4, 0.8]),
             batch_psnr=21.9, batch_ssim=0.6)
    b = dict(preds=["abc"], targets=["abd"], psnr=torch.tensor([100.0]), ssim=torch.tensor([1.0]),
             batch_psnr=100.0, batch_ssim=1.0)
    rank0.add_batch(**a)
    rank1.add_batch(**b)
    both.add_batch(**a)
    both.add_batch(**b)
    t = rank0.as_tensor() + rank1.as_tensor()  # what all_reduce(SUM) does
    assert t.dtype == torch.float64 and t.shape == (11,)
    assert SplitSums.from_tensor(t) == both
    assert SplitSums.from_tensor(t).result("standard") == pytest.approx(
        {"n": 3, "corrupt": 0, "acc": 100 / 3, "ned": (0 + 1 + 1 / 3) / 3, "psnr": 48.0, "ssim": 2.2 / 3,
         "psnr_standard": 48.0, "ssim_standard": 2.2 / 3, "psnr_textzoom": 60.95, "ssim_textzoom": 0.8, "batches": 2,
         "protocol": "standard", "batch_size": None})
    with pytest.raises(ValueError, match="expected 11 sums"):
        SplitSums.from_tensor(torch.zeros(8, dtype=torch.float64))


def test_unmeasured_metrics_are_none_not_zero():
    unmeasured = {"acc": None, "ned": None, "psnr": None, "ssim": None, "psnr_textzoom": None, "ssim_textzoom": None,
                  "psnr_standard": None, "ssim_standard": None, "batches": 0, "protocol": "textzoom", "batch_size": 8}
    bare = SplitSums()
    bare.add_batch(4)
    assert bare.result("textzoom", 8) == {"n": 4, "corrupt": 0, **unmeasured}
    labels_only = SplitSums()
    labels_only.add_batch(2, targets=["a", "b"])  # targets without predictions are ignored
    assert labels_only.result()["acc"] is None and labels_only.result()["n"] == 2
    assert SplitSums().result("textzoom", 8) == {"n": 0, "corrupt": 0, **unmeasured}


def test_add_batch_rejects_inconsistent_sizes():
    sums = SplitSums()
    with pytest.raises(ValueError, match="need 2 predictions and targets, got 1 and 2"):
        sums.add_batch(2, preds=["a"], targets=["a", "b"])
    with pytest.raises(ValueError, match="need 1 predictions and targets, got 1 and None"):
        sums.add_batch(preds=["a"])
    with pytest.raises(ValueError, match="need 2 PSNR and SSIM values, got 2 and None"):
        sums.add_batch(psnr=torch.zeros(2))
    with pytest.raises(ValueError, match="go together, got per-image values and batch values None, 0.5"):
        sums.add_batch(psnr=torch.zeros(2), ssim=torch.zeros(2), batch_ssim=0.5)
    with pytest.raises(ValueError, match="needs count"):
        sums.add_batch()
    assert sums == SplitSums()  # nothing was half-added


def test_average_is_sample_weighted():
    results = {"easy": {"n": 100, "corrupt": 1, "acc": 90.0, "ned": 0.1, "psnr": 24.0, "ssim": 0.9},
               "medium": {"n": 50, "corrupt": 0, "acc": 60.0, "ned": 0.3, "psnr": 20.0, "ssim": 0.7},
               "hard": {"n": 50, "corrupt": 2, "acc": 30.0, "ned": 0.5, "psnr": 18.0, "ssim": 0.5}}
    # acc: (9000 + 3000 + 1500) / 200 = 67.5, not the unweighted 60.0
    assert average_splits(results) == pytest.approx(
        {"n": 200, "corrupt": 3, "acc": 67.5, "ned": 0.25, "psnr": 21.5, "ssim": 0.75})
    results["hard"]["acc"] = None
    assert average_splits(results)["acc"] is None and average_splits(results)["psnr"] == pytest.approx(21.5)
    # an empty split carries no weight and its None does not erase the others
    results["hard"] = {"n": 0, "corrupt": 0, "acc": None, "ned": None, "psnr": None, "ssim": None}
    assert average_splits(results)["acc"] == pytest.approx(80.0)
    assert average_splits({})["acc"] is None


def test_average_carries_both_protocols_and_their_settings():
    def split(n, tz, std, batches):
        return {"n": n, "corrupt": 0, "acc": None, "ned": None, "psnr": tz, "ssim": 0.5, "psnr_textzoom": tz,
                "ssim_textzoom": 0.5, "psnr_standard": std, "ssim_standard": 0.4, "batches": batches,
                "protocol": "textzoom", "batch_size": 2}
    average = average_splits({"easy": split(3, 20.0, 21.0, 2), "hard": split(1, 16.0, 18.0, 1)})
    # both protocols' A values are sample-weighted: textzoom (3 * 20 + 16) / 4, standard (3 * 21 + 18) / 4
    assert average == pytest.approx({"n": 4, "corrupt": 0, "acc": None, "ned": None, "psnr": 19.0, "ssim": 0.5,
                                     "psnr_textzoom": 19.0, "ssim_textzoom": 0.5, "psnr_standard": 20.25,
                                     "ssim_standard": 0.4, "batches": 3, "protocol": "textzoom", "batch_size": 2})
    mixed = average_splits({"easy": split(3, 20.0, 21.0, 2), "hard": {**split(1, 16.0, 18.0, 1), "batch_size": 4}})
    assert mixed["batch_size"] is None and mixed["protocol"] == "textzoom"
