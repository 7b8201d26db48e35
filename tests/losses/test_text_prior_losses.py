"""The text-prior losses (distill, content) and the `active` tasks of both weightings, on tiny tensors
with values worked out by hand."""
import math

import pytest
import torch

from tsr.losses.content import ContentLoss
from tsr.losses.distill import DistillationLoss
from tsr.losses.weighting import AverageWeighting, UncertaintyWeighting


def test_distillation_is_the_kl_of_teacher_to_student_by_hand():
    student = torch.zeros(1, 1, 2)                        # p_s = (1/2, 1/2)
    teacher = torch.tensor([[[math.log(3.0), 0.0]]])      # p_t = (3/4, 1/4)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)      # 0.130812
    assert DistillationLoss()(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.130812, abs=1e-6)
    # temperature 2: p_t = softmax(ln3 / 2, 0) = (sqrt3, 1) / (sqrt3 + 1); the KL is scaled by 2^2
    a, b = math.sqrt(3) / (math.sqrt(3) + 1), 1 / (math.sqrt(3) + 1)
    expected_t2 = 4 * (a * math.log(a / 0.5) + b * math.log(b / 0.5))
    assert DistillationLoss(2.0)(student, teacher).item() == pytest.approx(expected_t2, rel=1e-6)


def test_distillation_averages_over_steps_and_is_zero_for_equal_logits():
    teacher = torch.tensor([[[math.log(3.0), 0.0]], [[0.0, 0.0]]])     # T=2: step 2 already agrees
    student = torch.zeros(2, 1, 2, requires_grad=True)
    loss = DistillationLoss()(student, teacher)
    assert loss.item() == pytest.approx(0.130812 / 2, abs=1e-6)
    loss.backward()
    # d KL / d student logits = p_s - p_t, divided by the T*B = 2 steps averaged
    assert student.grad[0, 0].tolist() == pytest.approx([(0.5 - 0.75) / 2, (0.5 - 0.25) / 2], abs=1e-6)
    assert student.grad[1, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    assert DistillationLoss()(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillationLoss(0.0)


def test_distillation_gives_the_teacher_no_gradient():
    teacher = torch.tensor([[[1.0, 0.0, -1.0]]], requires_grad=True)
    DistillationLoss()(torch.zeros(1, 1, 3, requires_grad=True), teacher).backward()
    assert teacher.grad is None


def test_content_loss_is_the_squared_error_relative_to_the_target_energy():
    target = torch.tensor([[[1.0, 0.0]]])
    assert ContentLoss()(torch.tensor([[[1.0, 2.0]]]), target).item() == pytest.approx(4.0)
    target = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]])                    # energy 25
    student = torch.tensor([[[3.0, 4.0]], [[0.0, 5.0]]], requires_grad=True)
    loss = ContentLoss()(student, target)
    assert loss.item() == pytest.approx(1.0)                                # 25 / 25
    loss.backward()
    assert student.grad[1, 0].tolist() == pytest.approx([0.0, 2 * 5.0 / 25])
    assert ContentLoss()(torch.zeros(2, 1, 2), target).item() == pytest.approx(1.0)   # a blank SR image: 1
    with pytest.raises(ValueError, match="differ"):
        ContentLoss()(torch.zeros(1, 1, 3), target)


def test_average_weighting_leaves_inactive_tasks_out_of_the_mean():
    weighting = AverageWeighting(["sr", "rec"], {"rec": 3.0})
    rec = torch.tensor(10.0, requires_grad=True)
    losses = {"sr": torch.tensor(2.0), "rec": rec}
    assert weighting(losses).item() == pytest.approx((2 + 3 * 10) / 4)
    total = weighting(losses, active={"sr"})
    assert total.item() == pytest.approx(2.0)
    total.backward()
    assert rec.grad.item() == 0.0                       # in the graph (DDP), but weighing nothing


def test_uncertainty_weighting_freezes_the_terms_of_inactive_tasks():
    weighting = UncertaintyWeighting(["sr", "rec"])       # s = 0: 0.5 * L_sr + 1 * L_rec
    losses = {"sr": torch.tensor(2.0), "rec": torch.tensor(10.0)}
    assert weighting(losses).item() == pytest.approx(0.5 * 2 + 10)
    total = weighting(losses, active={"sr"})
    assert total.item() == pytest.approx(1.0)
    total.backward()
    # d/ds_sr (0.5 e^-s L + 0.5 s) at s=0 = -0.5 * 2 + 0.5; the waiting task's s gets 0 (it does not drift)
    assert weighting.log_vars.grad.tolist() == pytest.approx([-0.5, 0.0])
