"""tsr profile (complexity) and tsr bench (fast path vs fp32 eager), on tiny models."""
import json

import pytest
import torch

from tsr.cli import main as tsr_main
from tsr.config import load_config
from tsr.data.synth import synthesize
from tsr.models.build import build_model
from tsr.perf import bench
from tsr.perf.complexity import measure
from tsr.perf.fast_path import autocast_dtype, input_to_device, to_device

TINY = ["model.sr.channels=8", "model.sr.blocks=1", "model.sr.stn=false", "model.recognizer.hidden=8",
        "model.recognizer.cnn_channels=[4,8,8,8,16,16,16]", "train.init=null", "data.num_workers=0"]


def test_profile_counts_flops_and_activations_of_the_head_by_hand():
    cfg = load_config("configs/joint_image.yaml", TINY)
    costs = {c.name: c for c in measure(build_model(cfg), (4, 16, 64), (4, 32, 128), repeats=1)}
    # upsample conv 8->32 (3x3) at 16x64, then conv_out 8->4 (9x9) at 32x128; 2 FLOPs per multiply-add
    assert costs["head"].flops == 2 * 16 * 64 * 8 * 32 * 9 + 2 * 32 * 128 * 8 * 4 * 81
    assert costs["head"].activations == 32 * 16 * 64 + 4 * 32 * 128
    assert costs["head"].params == (8 * 32 * 9 + 32) + (8 * 4 * 81 + 4)
    # the GRUs are counted: a TSRN block's two bidirectional GRUs of 4 hidden units
    gru = 2 * 2 * 2 * 3 * (8 * 4 + 4 * 4) * 16 * 64      # 2 GRUs x 2 directions x 2 FLOPs x 3 gates x ... x steps
    assert costs["sr"].flops > gru
    total = costs["total"]
    assert total.params == sum(c.params for n, c in costs.items() if n != "total")
    assert set(costs) == {"sr", "head", "recognizer", "total"} and all(c.latency_ms > 0 for c in costs.values())


def test_profile_command_prints_the_table(capsys):
    assert tsr_main(["profile", "--config", "configs/joint_feature.yaml", *TINY, "model.adapter.hidden=8"]) == 0
    out = capsys.readouterr().out
    assert "| part | params | GFLOPs / image |" in out and "| adapter |" in out and "| total |" in out


def test_fast_path_matches_fp32_within_bf16_precision():
    cfg = load_config("configs/sr.yaml", TINY)
    model = build_model(cfg).eval()
    lr = torch.rand(2, 4, 16, 64)
    with torch.no_grad():
        reference = model(lr)["sr"]
        fast = to_device(model, torch.device("cpu"), channels_last=True)
        amp = autocast_dtype("bf16", torch.device("cpu"))
        with torch.autocast("cpu", dtype=amp):
            out = fast(input_to_device(lr, torch.device("cpu"), True))["sr"].float()
    assert out.shape == reference.shape
    assert (out - reference).abs().max() < 0.05                   # bf16 keeps ~3 significant digits


def test_bench_writes_every_figure_with_both_modes(tmp_path):
    synthesize(tmp_path / "d", n_train=16, n_test=2, seed=5, workers=1)
    code = tsr_main(["bench", "--config", "configs/sr.yaml", "--steps", "1", "--batch", "4", "--eval-limit", "2",
                     "--data", str(tmp_path / "d"), "--out", str(tmp_path / "out"), *TINY])
    assert code == 0
    figures = json.loads((tmp_path / "out" / "bench.json").read_text())["figures"]
    assert [f["name"] for f in figures] == ["train sr", "eval (6 images, ACC+PSNR+SSIM)",
                                            "data loading (batch 4, 0 workers)"]
    for f in figures:
        assert f["eager"] > 0 and f["fast"] > 0 and f["speedup"] == pytest.approx(f["fast"] / f["eager"])
    assert "| train sr |" in (tmp_path / "out" / "bench.md").read_text()


def test_bench_figure_ratio():
    assert bench.Figure("x", eager=10.0, fast=25.0).speedup == 2.5
