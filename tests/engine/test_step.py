"""tsr.engine.step: the optimizer step the trainer runs and `tsr bench` times — accumulation, the hook before
the update, clipping, the schedule."""
import itertools

import pytest
import torch

from tsr.config import load_config
from tsr.engine.optim import build_optimizer, build_scheduler
from tsr.engine.step import OptimizerStep
from tsr.engine.tasks import StageTasks
from tsr.models.build import build_model

TINY = ["model.parts=[sr,head]", "train.tasks=[sr]", "model.sr.channels=8", "model.sr.blocks=1",
        "model.sr.stn=false", "train.lr_schedule=step", "train.lr_milestones=[1]"]


def batch(images: int, seed: int, corrupt: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"lr": torch.rand(images, 4, 16, 64, generator=generator),
            "hr": torch.rand(images, 4, 32, 128, generator=generator), "label": ["ab"] * images, "corrupt": corrupt}


def stepper(accum: int = 1, clip: float = 0.0) -> OptimizerStep:
    cfg = load_config(overrides=TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    # eval mode: BatchNorm normalises with its running statistics, so a sample's loss does not depend on the
    # other samples of its micro-batch and accumulation can be compared with one large batch
    model.eval()
    optimizer = build_optimizer(model, cfg["train"])
    return OptimizerStep(model, model, StageTasks(cfg, model), optimizer, build_scheduler(optimizer, cfg["train"]),
                         torch.amp.GradScaler("cpu", enabled=False), torch.device("cpu"), None, False,
                         accum_steps=accum, clip_grad_norm=clip)


def grads(step: OptimizerStep) -> list[torch.Tensor]:
    return [p.grad.clone() for p in step.model.trainable_parameters()]


def test_two_micro_batches_give_the_gradient_and_losses_of_one_batch():
    first, second = batch(2, seed=1, corrupt=1), batch(2, seed=2)
    whole = {"lr": torch.cat([first["lr"], second["lr"]]), "hr": torch.cat([first["hr"], second["hr"]]),
             "label": ["ab"] * 4, "corrupt": 1}
    seen = {}
    accumulated, single = stepper(accum=2), stepper(accum=1)
    assert accumulated(iter([first, second]), 0, lambda means, counts: seen.update(
        accumulated=(means, counts, grads(accumulated)))) is None
    single(iter([whole]), 0, lambda means, counts: seen.update(single=(means, counts, grads(single))))
    means, counts, accumulated_grads = seen["accumulated"]
    assert means.shape == (2,) and means.device.type == "cpu"          # (total, sr)
    assert torch.allclose(means, seen["single"][0], rtol=1e-5)
    assert counts.tolist() == [1.0, 4.0] == seen["single"][1].tolist()   # (corrupt, images) summed
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(accumulated_grads, seen["single"][2]))


def test_an_error_before_the_update_leaves_weights_and_schedule_alone():
    step = stepper()
    before = [p.detach().clone() for p in step.model.parameters()]

    def refuse(means, counts):
        raise RuntimeError("non-finite loss")

    with pytest.raises(RuntimeError, match="non-finite loss"):
        step(iter([batch(2, seed=3)]), 0, refuse)
    assert all(torch.equal(a, b) for a, b in zip(before, step.model.parameters()))
    assert step.scheduler.last_epoch == 0
    assert step(iter([batch(2, seed=3)]), 0, lambda means, counts: "reduced") == "reduced"
    assert not all(torch.equal(a, b) for a, b in zip(before, step.model.parameters()))
    lr = step.optimizer.param_groups[0]["lr"]
    assert step.scheduler.last_epoch == 1 and lr == pytest.approx(0.1 * step.scheduler.base_lrs[0])


def part_norms(step: OptimizerStep) -> dict[str, float]:
    return {part.name: torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in part.trainable_parameters()]))
            .item() for part in step.model.parts()}


def test_clipping_bounds_each_parts_gradient_norm_alone():
    free = stepper()
    free(itertools.repeat(batch(2, seed=4)), None)
    unclipped = part_norms(free)
    assert set(unclipped) == {"sr", "head"} and all(norm > 1e-2 for norm in unclipped.values())
    # a bound between the two parts' norms clips the larger part only: a global norm would shrink both
    small, large = sorted(unclipped.values())
    bound = (small + large) / 2
    clipped = stepper(clip=bound)
    clipped(itertools.repeat(batch(2, seed=4)), None)
    norms = part_norms(clipped)
    for name, norm in unclipped.items():
        assert norms[name] == pytest.approx(min(norm, bound), rel=1e-4)
