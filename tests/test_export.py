"""`tsr export --format onnx`: the SR network under onnxruntime matches PyTorch within 1/255, at any batch size."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tsr import api
from tsr.checkpoint import save_checkpoint
from tsr.cli import main as tsr_main
from tsr.config import load_config
from tsr.models.build import build_model
from trainer_helpers import REPO


@pytest.mark.parametrize("config, mask", [("demo/efficiency/abpn.yaml", True), ("demo/sr.yaml", False),
                                          ("demo/efficiency/rfdn.yaml", True)])
def test_onnxruntime_matches_pytorch_within_one_level(config, mask, tmp_path, capsys):
    cfg = load_config(str(REPO / "configs" / config), [f"data.mask={str(mask).lower()}", "model.sr.blocks=1"])
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():                      # residual heads start at exactly bicubic / nearest: move off it
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ckpt = save_checkpoint(tmp_path / "m.pth", model, cfg, step=0)
    assert tsr_main(["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    channels = 4 if mask else 3
    assert f"input 'lr' [batch, {channels}, 16, 64]" in capsys.readouterr().out
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    loaded, _ = api.load(ckpt)
    for batch in (1, 5):                       # the batch dimension is dynamic
        lr = torch.rand(batch, channels, 16, 64)
        (out,) = session.run(None, {"lr": lr.numpy()})
        expected = api.super_resolve(loaded, lr).numpy()
        assert out.shape == expected.shape == (batch, channels, 32, 128)
        assert np.abs(out - expected).max() < 1 / 255


def test_export_refuses_models_without_an_sr_network(tmp_path, capsys):
    cfg = load_config(str(REPO / "configs" / "demo" / "recognizer.yaml"))
    ckpt = save_checkpoint(tmp_path / "rec.pth", build_model(cfg), cfg, step=0)
    assert tsr_main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "has no ['sr', 'head'] part" in capsys.readouterr().err
