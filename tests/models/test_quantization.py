"""int8: eager-mode PTQ and QAT of the SR network (abpn + anchor head), the QAT stage in the trainer (checkpointed,
resumed), `tsr quantize`, and int8 checkpoints read by the API, `tsr eval` and `tsr sr`."""
import copy

import pytest
import torch
from PIL import Image

from tsr import api
from tsr.checkpoint import load_model_state, read_checkpoint, save_checkpoint
from tsr.cli import main as tsr_main
from tsr.config import ConfigError, load_config
from tsr.data.synth import synthesize
from tsr.engine.quantize import quantize_checkpoint
from tsr.engine.trainer import train
from tsr.errors import TsrError
from tsr.models import quantization
from tsr.models.build import build_model
from trainer_helpers import REPO, tiny_overrides

ABPN = str(REPO / "configs" / "demo" / "efficiency" / "abpn.yaml")
QAT = str(REPO / "configs" / "demo" / "qat.yaml")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("qdata")
    synthesize(root, n_train=24, n_test=2, seed=5, workers=1)
    return root


def tiny_abpn(data_root, out_root, config=ABPN, **extra):
    return load_config(config, tiny_overrides(data_root, out_root, **{"model.sr.channels": 8, **extra}))


@pytest.fixture(scope="module")
def fp32_ckpt(data_root, tmp_path_factory):
    """A float ABPN checkpoint with non-trivial weights (its last head conv no longer 0)."""
    out = tmp_path_factory.mktemp("fp32")
    cfg = tiny_abpn(data_root, out)
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return str(save_checkpoint(out / "abpn.pth", model, cfg, step=7))


@pytest.mark.parametrize("engine", ["onednn", "x86"])
def test_ptq_writes_an_int8_checkpoint_close_to_fp32_that_the_api_loads(fp32_ckpt, tmp_path, engine):
    chosen = None if engine == "onednn" else engine       # onednn: the default (model.int8_engine)
    written = quantize_checkpoint(fp32_ckpt, "ptq", tmp_path / "int8.pth", calib_pairs=16, batch_size=8, engine=chosen)
    assert written["quantized"] == {"from": fp32_ckpt, "mode": "ptq", "engine": engine, "calibration_pairs": 16}
    int8, cfg = api.load(tmp_path / "int8.pth")
    assert cfg["model"]["int8_engine"] == engine and torch.backends.quantized.engine == engine
    fp32, _ = api.load(fp32_ckpt)
    assert cfg["model"]["quantization"] == "int8" and quantization.is_int8(int8) and not quantization.is_int8(fp32)
    assert isinstance(int8["sr"].net.body[0][0], torch.ao.nn.intrinsic.quantized.ConvReLU2d)
    lr = torch.rand(8, 4, 16, 64)
    diff = (api.super_resolve(int8, lr) - api.super_resolve(fp32, lr)).abs()
    assert diff.mean() < 2 / 255 and diff.max() < 16 / 255


def test_quantize_refuses_the_wrong_source_and_unquantizable_nets(fp32_ckpt, data_root, tmp_path):
    with pytest.raises(TsrError, match="has model.quantization=fp32, --mode qat reads a qat checkpoint: use --mode ptq"):
        quantize_checkpoint(fp32_ckpt, "qat", tmp_path / "x.pth")
    cfg = load_config(str(REPO / "configs" / "demo" / "sr.yaml"), tiny_overrides(data_root, tmp_path))
    tsrn = str(save_checkpoint(tmp_path / "tsrn.pth", build_model(cfg), cfg, step=0))
    with pytest.raises(ConfigError, match="the sr network TSRNBackbone has no int8 layout"):
        quantize_checkpoint(tsrn, "ptq", tmp_path / "x.pth")
    with pytest.raises(ConfigError, match="has no int8 layout"):
        build_model(load_config(str(REPO / "configs" / "demo" / "sr.yaml"), ["model.quantization=qat"]))
    with pytest.raises(TsrError, match=r"--engine must be one of \['onednn', 'x86', 'fbgemm', 'qnnpack'\], got 'tpu'"):
        quantize_checkpoint(fp32_ckpt, "ptq", tmp_path / "x.pth", engine="tpu")
    quantize_checkpoint(fp32_ckpt, "ptq", tmp_path / "int8.pth", calib_pairs=4)
    with pytest.raises(TsrError, match="int8 kernels run on CPU only; use --device cpu"):
        api.load(tmp_path / "int8.pth", device="cuda")


def test_int8_engine_is_checked_and_activations_keep_7_bits(data_root, tmp_path):
    with pytest.raises(ConfigError, match="'model.int8_engine'"):
        build_model(tiny_abpn(data_root, tmp_path, **{"model.int8_engine": "tensorrt"}))
    # reduce_range on every engine: full 8-bit activations saturate onednn's int16 sums on CPUs without VNNI
    model = quantization.prepare(build_model(tiny_abpn(data_root, tmp_path)), "ptq", "onednn")
    observer = model["sr"].net.body[0][0].activation_post_process
    assert torch.backends.quantized.engine == "onednn" and observer.reduce_range and observer.quant_max == 127


def test_qat_weight_ranges_follow_the_weights_and_activation_ranges_only_training_batches(data_root, tmp_path):
    cfg = tiny_abpn(data_root, tmp_path, **{"model.quantization": "qat"})
    model = build_model(cfg)
    conv = model["sr"].net.body[0][0]
    # per-channel weight scales have their shapes at build time (checkpoints load strictly), from the weights
    assert conv.weight_fake_quant.scale.shape == (8,)
    with torch.no_grad():
        conv.weight.mul_(3)
    model.train()(torch.rand(2, 4, 16, 64))
    w = conv.weight.detach()
    expected = torch.maximum(-w.amin(dim=(1, 2, 3)) / 128, w.amax(dim=(1, 2, 3)) / 127)     # qint8: -128 .. 127
    assert torch.allclose(conv.weight_fake_quant.scale, expected, rtol=1e-3)
    act = conv.activation_post_process
    before = act.activation_post_process.max_val.clone()
    model.eval()(10 * torch.rand(2, 4, 16, 64))                # evaluation images must not move the ranges
    assert torch.equal(act.activation_post_process.max_val, before)
    model.train()(10 * torch.rand(2, 4, 16, 64))
    assert not torch.equal(act.activation_post_process.max_val, before)


def test_qat_is_a_stage_that_resumes_and_converts_to_an_int8_model_eval_and_sr_read(fp32_ckpt, data_root, tmp_path,
                                                                                     capsys):
    overrides = {"train.init": fp32_ckpt, "train.steps": 2, "model.sr.channels": 8, "run.name": "qat"}
    cfg = load_config(QAT, tiny_overrides(data_root, tmp_path, **overrides))
    assert cfg["model"]["quantization"] == "qat" and cfg["model"]["sr"]["type"] == "abpn"
    train(cfg)
    run = tmp_path / "qat"
    first = read_checkpoint(run / "last.pth")
    assert any(k.endswith("weight_fake_quant.scale") for k in first["model"])
    # resume continues the QAT run strictly (observer and fake-quant buffers included)
    assert tsr_main(["train", "--resume", str(run), "train.steps=3"]) == 0
    assert read_checkpoint(run / "last.pth")["step"] == 3
    assert tsr_main(["quantize", "--ckpt", str(run / "last.pth"), "--mode", "qat", "--out", str(tmp_path / "q.pth")]) == 0
    assert "int8 (qat, engine onednn) written" in capsys.readouterr().out
    assert tsr_main(["quantize", "--ckpt", str(run / "last.pth"), "--mode", "qat", "--engine", "x86",
                     "--out", str(tmp_path / "q86.pth")]) == 0
    assert "int8 (qat, engine x86) written" in capsys.readouterr().out
    assert api.load(tmp_path / "q86.pth")[1]["model"]["int8_engine"] == "x86"
    # the int8 model matches the fake-quantised one it came from (the same arithmetic, simulated vs real)
    qat_model = build_model(cfg)
    load_model_state(qat_model, read_checkpoint(run / "last.pth")["model"], strict=True)
    int8, _ = api.load(tmp_path / "q.pth")
    lr = torch.rand(4, 4, 16, 64)
    assert (api.super_resolve(int8, lr) - api.super_resolve(qat_model, lr)).abs().max() < 3 / 255
    assert tsr_main(["eval", "--data", str(data_root / "test"), "--device", "cpu", "--out", str(tmp_path / "ev"),
                     "--ckpt", f"{tmp_path / 'q.pth'}:abpn-int8"]) == 0
    assert "abpn-int8" in capsys.readouterr().out
    Image.new("RGB", (40, 12), "white").save(tmp_path / "word.png")
    assert tsr_main(["sr", "--ckpt", str(tmp_path / "q.pth"), "--input", str(tmp_path / "word.png"),
                     "--out", str(tmp_path / "sr")]) == 0
    assert Image.open(tmp_path / "sr" / "word.png").size == (128, 32)
    assert tsr_main(["bench", "--int8", str(tmp_path / "q.pth"), "--steps", "1", "--out", str(tmp_path / "b")]) == 0
    table = (tmp_path / "b" / "bench.md").read_text()
    assert "| SR inference, batch 1: fast path = int8 (abpn) |" in table and "batch 64" in table
    assert "train" not in table                     # --int8 alone times inference only
