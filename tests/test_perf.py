"""tsr profile (complexity) and tsr bench (fast path vs fp32 eager), on tiny models."""
import json

import pytest
import torch

from tsr.cli import main as tsr_main
from tsr.config import load_config
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.data.synth import synthesize
from tsr.models.build import build_model
from tsr.perf import bench
from tsr.perf.complexity import measure
from tsr.engine.fast_path import autocast_dtype, input_to_device, to_device
from tsr.perf.memory import peak_memory_mb, state_tensors

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
    assert [f["name"] for f in figures[:2]] == ["train sr", "eval (6 images, ACC+PSNR+SSIM)"]
    assert figures[2]["name"].startswith("data loading (batch 4, 0 workers, cache built in ")
    for f in figures:
        assert f["eager"] > 0 and f["fast"] > 0 and f["speedup"] == pytest.approx(f["fast"] / f["eager"])
    assert all(f["peak_mb_eager"] > 0 and f["peak_mb_fast"] > 0 for f in figures[:2])  # train and eval
    assert "| train sr |" in (tmp_path / "out" / "bench.md").read_text()


def test_cpu_peak_memory_counts_live_tensors_until_freed():
    a = torch.zeros(1024, 256)                      # 1 MB, exists before the call

    def call():
        b = a * 2                                   # 2 MB live
        c = b.view(-1)                              # a view adds nothing
        d = c + 1                                   # 3 MB
        del b, c                                    # b's storage freed: 2 MB
        e = torch.ones(2048, 256)                   # 4 MB: the peak
        del d, e                                    # 1 MB
        f = torch.ones(3 * 1024, 256)               # 4 MB again (8 MB if frees were not seen)
        return f

    assert peak_memory_mb(call, torch.device("cpu"), [a]) == 4.0


def test_training_step_peak_memory_holds_model_and_optimizer_state():
    cfg = load_config("configs/recognizer.yaml", TINY)
    figure = bench.bench_training("recognizer", cfg, torch.device("cpu"), batch=4, steps=1)
    model = build_model(cfg)
    # parameters + their gradients + Adam's two moments, plus activations on top
    state_mb = 4 * sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    assert figure.peak_mb_eager > state_mb and figure.peak_mb_fast > state_mb
    # a fresh model has no gradients yet: its parameters, its buffers and the batch's one tensor
    expected = len(list(model.parameters())) + len(list(model.buffers())) + 1
    assert len(state_tensors(model, {"x": torch.zeros(1), "label": ["ab"]})) == expected


def test_bench_figure_ratio():
    assert bench.Figure("x", eager=10.0, fast=25.0).speedup == 2.5


def test_throughput_leaves_the_warm_up_steps_out_of_the_steady_rate():
    from tsr.engine.timing import Throughput
    throughput = Throughput(warmup=2)
    for images, seconds in [(32, 4.0), (32, 2.0), (32, 1.0), (32, 1.0)]:   # compile / cuDNN search, then steady
        throughput.add(images, seconds)
    assert throughput.rate == 128 / 8.0 and throughput.steady == 64 / 2.0
    assert Throughput(warmup=5).steady is None


def test_scaling_table_reports_speed_up_and_efficiency():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_scaling", "eval/bench_scaling.py")
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    table = scaling.render([{"procs": 1, "global_batch": 256, "images_per_s": 1000.0},
                            {"procs": 4, "global_batch": 1024, "images_per_s": 3700.0}])
    assert table.splitlines()[-1] == "| 4 | 1024 | 3700.0 | 3.70x | 92% |"
    with pytest.raises(SystemExit):
        scaling.main(["--config", "configs/sr.yaml", "--steps", "5"])


def test_bench_evaluation_skips_an_empty_split_and_refuses_no_data(tmp_path):
    from tsr.errors import DataError
    cfg = load_config("configs/joint_image.yaml", TINY)
    synthesize(tmp_path / "d", n_train=0, n_test=[0, 2, 1], seed=5, workers=1)
    write_textzoom_lmdb(tmp_path / "d" / "test" / "easy", [])          # an empty first split
    figure = bench.bench_evaluation(cfg, str(tmp_path / "d" / "test"), torch.device("cpu"), limit=0)
    assert figure.name == "eval (3 images, ACC+PSNR+SSIM)" and figure.peak_mb_eager > 0 and figure.peak_mb_fast > 0
    for split in ("easy", "medium", "hard"):
        write_textzoom_lmdb(tmp_path / "e" / "test" / split, [])
    with pytest.raises(DataError, match="holds no test samples in easy, medium, hard"):
        bench.bench_evaluation(cfg, str(tmp_path / "e" / "test"), torch.device("cpu"), limit=0)
