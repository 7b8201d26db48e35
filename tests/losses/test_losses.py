import math

import pytest
import torch

from tsr.charset import CTCCodec, alphabet_for
from tsr.losses import AverageWeighting, CTCTaskLoss, GradientProfileLoss, SRLoss, UncertaintyWeighting


def test_gradient_profile_map_by_hand():
    x = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])
    grad = GradientProfileLoss(eps=0.0).gradient_map(x)
    # centre top: right-left = 0 - 0, below-above = 0 - 0 (zero padding above) -> 0; left top: (1 - 0)/2 = 0.5
    assert grad[0, 0, 0].tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert grad[0, 0, 1].tolist() == pytest.approx([0.0, 0.5, 0.0])


def test_gradient_profile_is_zero_for_equal_images_and_has_finite_gradients_on_flat_ones():
    flat = torch.full((2, 3, 8, 8), 0.5, requires_grad=True)
    loss = GradientProfileLoss()(flat, flat.detach().clone())
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(flat.grad).all()


def test_sr_loss_weights_mse_and_gradient_terms():
    sr, hr = torch.rand(2, 4, 8, 16), torch.rand(2, 4, 8, 16)
    mse = torch.mean((sr - hr) ** 2).item()
    gp = GradientProfileLoss()(sr[:, :3], hr[:, :3]).item()
    assert SRLoss(1.0, 0.0)(sr, hr).item() == pytest.approx(mse, rel=1e-6)
    assert SRLoss(2.0, 0.5)(sr, hr).item() == pytest.approx(2 * mse + 0.5 * gp, rel=1e-6)
    with pytest.raises(ValueError, match="SR output .* and HR target .* differ"):
        SRLoss()(sr, hr[:, :3])


def test_ctc_loss_is_small_for_the_right_word_and_large_for_a_wrong_one():
    codec = CTCCodec(alphabet_for("lower"))
    logits = torch.full((6, 1, codec.num_classes), -10.0)
    for t, cls in enumerate([codec.index["a"], 0, codec.index["b"], 0, 0, 0]):
        logits[t, 0, cls] = 10.0
    ctc = CTCTaskLoss(codec)
    assert ctc(logits, ["ab"]).item() < 1e-3
    assert ctc(logits, ["zz"]).item() > 5
    with pytest.raises(ValueError, match=r"logits must be \[T, B=2"):
        ctc(logits, ["ab", "cd"])


def test_average_weighting_is_a_weighted_mean():
    losses = {"sr": torch.tensor(2.0), "rec": torch.tensor(4.0)}
    assert AverageWeighting(["sr", "rec"])(losses).item() == pytest.approx(3.0)
    assert AverageWeighting(["sr", "rec"], {"rec": 3.0})(losses).item() == pytest.approx((2 + 12) / 4)
    with pytest.raises(ValueError, match=r"name \['ocr'\]"):
        AverageWeighting(["sr"], {"ocr": 1.0})
    with pytest.raises(ValueError, match="non-empty list"):
        AverageWeighting([])


@pytest.mark.parametrize("task, optimum", [("sr", lambda L: math.log(L)), ("rec", lambda L: math.log(2 * L))])
def test_uncertainty_log_variance_converges_to_its_closed_form_optimum(task, optimum):
    """0.5 e^-s L + 0.5 s (regression) is minimal at s = log L; e^-s L + 0.5 s (classification) at s = log 2L."""
    weighting = UncertaintyWeighting([task])
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    loss_value = torch.tensor(3.0)
    for _ in range(2000):
        optimizer.zero_grad()
        weighting({task: loss_value}).backward()
        optimizer.step()
    assert weighting.log_vars.item() == pytest.approx(optimum(3.0), abs=1e-2)
    assert weighting.sigmas()[task] == pytest.approx(math.exp(optimum(3.0) / 2), rel=1e-2)


def test_uncertainty_weighting_formula_at_given_log_variances():
    weighting = UncertaintyWeighting(["sr", "rec"])
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([1.0, -0.5]))
    total = weighting({"sr": torch.tensor(2.0), "rec": torch.tensor(3.0)}).item()
    assert total == pytest.approx(0.5 * math.exp(-1) * 2 + 0.5 + math.exp(0.5) * 3 - 0.25)
