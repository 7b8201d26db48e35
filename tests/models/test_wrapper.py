"""The uniform wrapper: freezing modes, frozen BN staying in eval mode, parameter groups, stable keys under
DDP and torch.compile. Stand-in networks keep these tests independent of the real architectures."""
import pytest
import torch
import torch.distributed as torch_dist
from torch import nn

from tsr.checkpoint import strip_prefixes, unwrap
from tsr.models.wrapper import FullModel, Part


class Embedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(6)
        self.embedding = nn.Linear(6, 5)

    def forward(self, x):
        return self.embedding(self.norm(x))


class TinyRecognizer(nn.Module):
    """CRNN-like names: cnn.* (with BN) then rnn.0, rnn.1.embedding; head_only trains rnn.1.embedding only."""

    TRAINABLE_SCOPES = {"head_only": ("rnn.1.embedding",), "broken": ("rnn.9",)}

    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.rnn = nn.Sequential(nn.Linear(6, 6), Embedding())

    def forward(self, images):  # [B, 3, H, W] -> [W, B, 5]
        x = self.cnn(images).mean(dim=2)                  # B, 6, W
        b, c, w = x.shape
        x = self.rnn[0](x.permute(2, 0, 1)).reshape(w * b, c)
        return self.rnn[1](x).view(w, b, -1)


class TinySR(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, lr):
        return self.bn(self.conv(lr))


class TinyHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 3 * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, features, lr=None):   # heads take the LR input too (bicubic skip)
        return torch.tanh(self.shuffle(self.conv(features)))


def tiny_model(recognizer_mode="all"):
    torch.manual_seed(0)
    return FullModel({"sr": Part("sr", TinySR()), "head": Part("head", TinyHead()),
                      "recognizer": Part("recognizer", TinyRecognizer(), trainable=recognizer_mode)})


def test_head_only_trains_exactly_the_declared_scope():
    model = tiny_model("head_only")
    trainable = sorted(k for k, p in model.named_parameters() if p.requires_grad and k.startswith("recognizer."))
    assert trainable == ["recognizer.net.rnn.1.embedding.bias", "recognizer.net.rnn.1.embedding.weight"]
    # Other parts are untouched by the recognizer's mode.
    assert all(p.requires_grad for k, p in model.named_parameters() if not k.startswith("recognizer."))
    assert model["recognizer"].num_parameters(trainable_only=True) == 6 * 5 + 5


def test_none_and_all_modes_and_switching_back():
    part = Part("recognizer", TinyRecognizer(), trainable="none")
    assert part.trainable_parameters() == [] and part.num_parameters(trainable_only=True) == 0
    part.set_trainable("all")
    assert len(part.trainable_parameters()) == len(list(part.net.parameters()))
    assert part.num_parameters() == sum(p.numel() for p in part.net.parameters())


def test_unknown_modes_are_errors_that_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"must be one of \['all', 'none', 'head_only', 'broken'\], got 'heads'"):
        Part("recognizer", TinyRecognizer(), trainable="heads")
    with pytest.raises(ValueError, match=r"'broken' names \['rnn.9'\], which hold no parameters"):
        Part("recognizer", TinyRecognizer(), trainable="broken")
    with pytest.raises(ValueError, match="must be one of \\['all', 'none'\\]"):
        Part("sr", TinySR(), trainable="head_only")     # TinySR declares no scopes


def test_frozen_batchnorm_stays_in_eval_mode_and_keeps_its_statistics():
    model = tiny_model("head_only").train()
    rec = model["recognizer"].net
    assert rec.cnn[1].training is False                  # frozen BN
    assert rec.rnn[1].norm.training is False             # BN beside the trainable scope, not inside it
    assert rec.cnn[0].training is True                   # other layers follow train()
    assert model["sr"].net.bn.training is True           # trainable part: BN trains
    before = rec.cnn[1].running_mean.clone()
    model(torch.rand(2, 3, 8, 16))
    assert torch.equal(rec.cnn[1].running_mean, before)
    assert not torch.equal(model["sr"].net.bn.running_mean, torch.zeros(8))   # trainable BN did update

    model.eval()
    assert rec.cnn[1].training is False and rec.cnn[0].training is False
    model.train()
    assert rec.cnn[1].training is False and rec.cnn[0].training is True

    model["recognizer"].set_trainable("none")
    model.train()
    assert all(not m.training for m in rec.modules())    # a part frozen entirely is a fixed function
    model["recognizer"].set_trainable("all")
    model.train()
    assert all(m.training for m in rec.modules())


def test_param_groups_tag_parts_and_skip_decay_on_biases_and_norms():
    model = tiny_model("head_only")
    groups = model.param_groups(lr=1e-3, weight_decay=0.05)
    assert [(g["name"], g["part"], g["weight_decay"]) for g in groups] == [
        ("sr", "sr", 0.05), ("sr.no_decay", "sr", 0.0), ("head", "head", 0.05), ("head.no_decay", "head", 0.0),
        ("recognizer", "recognizer", 0.05), ("recognizer.no_decay", "recognizer", 0.0)]
    named = {id(p): k for k, p in model.named_parameters()}
    by_name = {g["name"]: sorted(named[id(p)] for p in g["params"]) for g in groups}
    assert by_name["sr"] == ["sr.net.conv.weight"]
    assert by_name["sr.no_decay"] == ["sr.net.bn.bias", "sr.net.bn.weight", "sr.net.conv.bias"]
    assert by_name["recognizer"] == ["recognizer.net.rnn.1.embedding.weight"]
    assert by_name["recognizer.no_decay"] == ["recognizer.net.rnn.1.embedding.bias"]
    assert all(g["lr"] == 1e-3 for g in groups)
    torch.optim.AdamW(groups)                            # extra keys (name, part) are accepted by optimizers
    model["recognizer"].set_trainable("none")
    assert [g["part"] for g in model.param_groups(1e-3, 0.0)] == ["sr", "sr", "head", "head"]


def test_forward_runs_the_image_level_graph():
    model = tiny_model().eval()
    out = model(torch.rand(2, 3, 8, 16))
    assert out["features"].shape == (2, 8, 8, 16)
    assert out["sr"].shape == (2, 3, 16, 32)
    assert out["logits"].shape == (32, 2, 5)             # recognizer read the SR image (width 32)
    alone = FullModel({"recognizer": Part("recognizer", TinyRecognizer())}).eval()
    assert alone(torch.rand(2, 3, 8, 20))["logits"].shape == (20, 2, 5)


def test_summary_lists_parts_with_counts():
    model = tiny_model("head_only")
    lines = model.summary().splitlines()
    assert lines[0].split() == ["part", "network", "trainable", "params", "trainable", "params"]
    rec = model["recognizer"].num_parameters()
    assert lines[4].split() == ["recognizer", "TinyRecognizer", "head_only", f"{rec:,}", "35"]
    assert lines[-1].split()[0] == "total" and lines[-1].split()[1] == f"{model.num_parameters():,}"


def test_fullmodel_rejects_parts_under_the_wrong_name():
    with pytest.raises(ValueError, match="stored under 'head' is named 'sr'"):
        FullModel({"head": Part("sr", TinySR())})


def test_keys_are_identical_under_ddp(tmp_path):
    model = tiny_model("head_only")
    torch_dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model)
        assert unwrap(ddp) is model
        assert list(unwrap(ddp).state_dict()) == list(model.state_dict())
        assert all(k.startswith("module.") for k in ddp.state_dict())
        assert list(strip_prefixes(ddp.state_dict())) == list(model.state_dict())
        ddp.train()                                      # DDP.train reaches the parts' frozen-BN rule
        assert model["recognizer"].net.cnn[1].training is False
    finally:
        torch_dist.destroy_process_group()


def test_keys_are_identical_under_torch_compile():
    model = tiny_model()
    try:
        compiled = torch.compile(model, backend="eager")     # wrapping only: no compilation runs here
    except Exception as e:  # pragma: no cover - depends on the torch build
        pytest.skip(f"torch.compile unavailable: {e}")
    assert unwrap(compiled) is model
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    assert list(strip_prefixes(compiled.state_dict())) == list(model.state_dict())
    nested = torch.compile(nn.DataParallel(compiled), backend="eager")
    assert unwrap(nested) is model
    assert list(strip_prefixes(nested.state_dict())) == list(model.state_dict())


# ---------------------------------------------------------------------------------------------- build_model

from tsr.config import ConfigError, build_config  # noqa: E402
from tsr.models.build import SR, build_model  # noqa: E402

SMALL = ["model.sr.blocks=1", "model.sr.channels=16", "model.sr.stn=false", "model.recognizer.hidden=16"]


def test_build_model_derives_channels_classes_and_trainable_mode():
    model = build_model(build_config({}, [*SMALL, "model.recognizer.trainable=head_only"]))
    assert list(model.keys()) == ["sr", "head", "recognizer"]
    assert model["sr"].net.block1[0].in_channels == 4 and model["head"].net.conv_out.out_channels == 4
    assert model["recognizer"].net.rnn[1].embedding.out_features == 37
    assert model["recognizer"].trainable == "head_only"
    assert model["recognizer"].num_parameters(trainable_only=True) == 2 * 16 * 37 + 37
    rgb_all = build_model(build_config({}, [*SMALL, "data.mask=false", "data.label_filter=all"]))
    assert rgb_all["sr"].net.block1[0].in_channels == 3 and rgb_all["head"].net.conv_out.out_channels == 3
    assert rgb_all["recognizer"].net.rnn[1].embedding.out_features == 95


def test_build_feature_level_model_and_its_forward():
    cfg = build_config({}, [*SMALL, "model.parts=[sr, head, recognizer, adapter]", "model.adapter.type=mlp",
                            "model.adapter.hidden=8"])
    model = build_model(cfg).eval()
    assert list(model.keys()) == ["sr", "head", "recognizer", "adapter"]
    out = model(torch.rand(2, 4, 16, 64))
    assert out["sr"].shape == (2, 4, 32, 128) and out["logits"].shape == (26, 2, 37)


@pytest.mark.parametrize("overrides, message", [
    (["model.parts=[sr, head, recognizer, adapter]"], "has 'adapter' but model.adapter.type is null"),
    (["model.adapter.type=dense"], "model.adapter.type' is 'dense' but 'adapter' is not in model.parts"),
    (["model.parts=[head, recognizer]"], "has 'head' without \\['sr'\\]"),
    (["model.parts=[sr, decoder]"], "expected a non-empty list of \\['sr', 'head', 'recognizer', 'adapter'\\]"),
    (["model.parts=[sr, sr]"], "names a part twice"),
    (["data.hr_height=64"], "model.head.stages=1 upsamples x2"),
])
def test_build_model_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_model(build_config({}, [*SMALL, *overrides]))


def test_registry_rejects_unknown_types_naming_the_key():
    with pytest.raises(ConfigError, match="config key 'model.sr.type' is 'edsr'; valid types: \\['tsrn', 'imdn', 'imdn_rtc', 'rfdn', 'abpn'\\]"):
        SR.build("edsr")
