"""The lightweight backbones (imdn, imdn_rtc, rfdn, abpn) and their depth-to-space heads (shuffle, anchor)."""
import pytest
import torch
import torch.nn.functional as F
import yaml

from tsr.config import ConfigError, load_config
from tsr.engine.tasks import StageTasks
from tsr.models.abpn import ABPNBackbone
from tsr.models.build import build_model
from tsr.models.imdn import IMDNBackbone
from tsr.models.imdn_rtc import IMDNRTCBackbone
from tsr.models.rfdn import RFDNBackbone
from tsr.models.shuffle_head import ShuffleHead
from trainer_helpers import REPO, stage_config

LIGHT = ("imdn", "imdn_rtc", "rfdn", "abpn")


def n_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def backbone_overrides(name: str, **extra) -> list[str]:
    """configs/backbones/<name>.yaml as dotted overrides (then `extra`)."""
    tree = yaml.safe_load((REPO / "configs" / "backbones" / f"{name}.yaml").read_text())["model"]
    values = {f"model.{part}.{k}": v for part, section in tree.items() for k, v in section.items()}
    values.update(extra)
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]


def test_parameter_counts_follow_the_papers():
    # IMDN x2 (RGB): 694K in the paper (Table 4); ABPN x3 (RGB): 42.5K (SR_Mobile_Quantization's base7)
    assert n_params(IMDNBackbone(3, 64, 6), ShuffleHead(64, 3, stages=1)) == 694_404
    abpn_x3 = ABPNBackbone(3, 28, 4)
    head_x3 = torch.nn.Sequential(torch.nn.Conv2d(28, 27, 3), torch.nn.Conv2d(27, 27, 3))   # the anchor head at s=3
    assert n_params(abpn_x3, head_x3) == 42_539
    assert n_params(IMDNRTCBackbone(3, 12, 5), ShuffleHead(12, 3, stages=1)) == 20_190
    assert n_params(RFDNBackbone(3, 50, 4), ShuffleHead(50, 3, stages=2)) == 433_448   # AIM 2020's RFDN x4: 433K


@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("mask", [True, False])
def test_backbones_take_3_or_4_channels_and_give_features_at_lr_size(name, mask):
    cfg = load_config(stage_config("sr"), backbone_overrides(name, **{"data.mask": mask}))
    model = build_model(cfg).eval()
    channels = 4 if mask else 3
    out = model(torch.rand(2, channels, 16, 64))
    assert out["features"].shape == (2, cfg["model"]["sr"]["channels"], 16, 64)
    assert out["sr"].shape == (2, channels, 32, 128)


def test_anchor_head_starts_as_nearest_neighbour_upscaling_and_is_abpn_order():
    head = ShuffleHead(channels=8, out_channels=3, stages=1, anchor=True)
    lr = torch.rand(2, 3, 4, 8)
    out = head(torch.rand(2, 8, 4, 8), lr)
    assert torch.equal(out, F.interpolate(lr, scale_factor=2, mode="nearest"))
    # every output channel's 4 sub-pixels read their own LR channel: perturb channel 1 of the conv output only
    with torch.no_grad():
        head.conv_out.bias[4:8] = 1.0                     # channels 4..7 = sub-pixels of output channel 1
    out = head(torch.zeros(1, 8, 4, 8), torch.zeros(1, 3, 4, 8))
    assert out[:, 1].eq(1).all() and out[:, [0, 2]].eq(0).all()


def test_shuffle_head_with_bicubic_skip_starts_as_bicubic():
    head = ShuffleHead(channels=8, out_channels=4, stages=1, bicubic_skip=True)
    lr = torch.rand(1, 4, 16, 64)
    expected = F.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False)
    assert torch.equal(head(torch.rand(1, 8, 16, 64), lr), expected)


@pytest.mark.parametrize("overrides, message", [
    (["model.sr.type=imdn", "model.sr.stn=true"], "model.sr.type='imdn': model.sr.stn=true: the imdn backbone has no TPS-STN"),
    (["model.sr.type=abpn", "model.sr.stn=false", "model.head.type=anchor", "model.head.bicubic_skip=true"],
     "bicubic_skip=true with the anchor head"),
    (["model.sr.type=rfdn", "model.sr.stn=false", "data.lr_height=8", "data.hr_height=16"],
     r"rfdn needs an LR size of at least 15x15"),
])
def test_bad_backbone_settings_are_config_errors(overrides, message):
    cfg = load_config(stage_config("sr"), overrides)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg)


def _batch(cfg, n=4):
    data = cfg["data"]
    c = 4 if data["mask"] else 3
    return {"lr": torch.rand(n, c, data["lr_height"], data["lr_width"]),
            "hr": torch.rand(n, c, data["hr_height"], data["hr_width"]), "label": ["ab", "cd1", "x", "word"][:n]}


@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("stage", ["sr", "joint_image", "joint_feature"])
def test_one_training_step_in_every_stage(name, stage):
    tiny = {"model.sr.channels": 8, "model.sr.blocks": 1, "model.recognizer.hidden": 8,
            "model.recognizer.cnn_channels": "[4,8,8,8,16,16,16]", "model.adapter.hidden": 8, "train.init": "null"}
    cfg = load_config(stage_config(stage), backbone_overrides(name, **tiny))
    torch.manual_seed(0)
    model = build_model(cfg).train()
    tasks = StageTasks(cfg, model)
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.1)
    for _ in range(2):      # the head's last conv starts at 0 (residual heads): the backbone learns from step 2
        optimizer.zero_grad()
        total, losses = tasks.forward_losses(model, _batch(cfg), torch.device("cpu"), amp=None, channels_last=False)
        total.backward()
        optimizer.step()
    assert torch.isfinite(total) and set(losses) == set(cfg["train"]["tasks"])
    grads = [p.grad for p in model["sr"].net.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
