"""The efficiency table (AIM 2020 style): per SR checkpoint, its cost (parameters, FLOPs and activations per crop,
CPU latency per crop at batch 1 and 64, peak tensor memory at batch 64) beside its quality from the one evaluator
(A-PSNR, A-SSIM, ACC on E/M/H/A). launch/efficiency.sh trains the rows; eval/efficiency.py prints this table.

Costs of an int8 checkpoint count its network as the float one (same operations, int8 arithmetic); its latency and
memory are its own.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from tsr import inference
from tsr.config import build_config
from tsr.engine.run_eval import run_eval
from tsr.images import hr_shape, lr_shape
from tsr.io import atomic_write_text
from tsr.metrics.tables import AVERAGE, _fmt, _markdown, split_prefix, with_average
from tsr.models.build import build_model
from tsr.perf.complexity import measure
from tsr.perf.latency import compare_sr_latency_ms
from tsr.perf.memory import peak_memory_mb, state_tensors

SR_PARTS = ("sr", "head")
BATCHES = (1, 64)


def costs(model, cfg: dict) -> dict:
    """Cost columns of one SR model (loaded, eval mode) with config `cfg`, latency aside (`latencies`)."""
    float_net = build_model(build_config(cfg, ["model.quantization=fp32"]))
    parts = [c for c in measure(float_net, lr_shape(cfg["data"]), hr_shape(cfg["data"]), repeats=1)
             if c.name in SR_PARTS]
    row = {"params": sum(c.params for c in parts), "flops": sum(c.flops for c in parts),
           "activations": sum(c.activations for c in parts)}
    lr = torch.rand(BATCHES[-1], *lr_shape(cfg["data"]))
    try:
        row["peak_mb"] = peak_memory_mb(lambda: inference.super_resolve(model, lr), torch.device("cpu"),
                                        state_tensors(model, lr))
    except (RuntimeError, NotImplementedError):      # int8 tensors whose storage cannot be inspected
        row["peak_mb"] = None
    return row


def efficiency_rows(ckpts: Sequence[tuple[str, str]], data_root: str, recognizer: Optional[str],
                    out_dir: Optional[str], repeats: int = 10) -> list[dict]:
    """[(path, label)] -> one dict per checkpoint: label, backbone, quantization, cost columns, quality columns."""
    results = dict(run_eval(data_root=data_root, ckpts=ckpts, recognizers=[recognizer] if recognizer else (),
                            out_dir=out_dir, device=torch.device("cpu")))
    loaded = {label: inference.load(path) for path, label in ckpts}
    ms = latencies(loaded, repeats)
    rows = []
    for label, (model, cfg) in loaded.items():
        splits = cfg["data"]["test_splits"]
        quality = with_average(label, results[label], splits)
        row = {"label": label, "backbone": cfg["model"]["sr"]["type"], "quantization": cfg["model"]["quantization"],
               **costs(model, cfg), **ms[label], "psnr": quality[AVERAGE]["psnr"], "ssim": quality[AVERAGE]["ssim"]}
        row.update({f"{split_prefix(s)}-ACC": quality[s]["acc"] for s in [*splits, AVERAGE]})
        rows.append(row)
    return rows


def latencies(loaded: dict, repeats: int) -> dict[str, dict[str, float]]:
    """{label: (model, cfg)} -> {label: {ms_per_crop_b<batch>: ...}}: the models that read LR crops of one shape
    are timed in turns (tsr.perf.latency), so that the table's latency ratios hold on a busy machine too."""
    ms = {label: {} for label in loaded}
    shapes = {lr_shape(cfg["data"]) for _, cfg in loaded.values()}
    for shape in shapes:
        models = {label: model for label, (model, cfg) in loaded.items() if lr_shape(cfg["data"]) == shape}
        for batch in BATCHES:
            for label, value in compare_sr_latency_ms(models, shape, batch, repeats).items():
                ms[label][f"ms_per_crop_b{batch}"] = value
    return ms


def render(rows: list[dict]) -> str:
    acc_keys = [k for k in rows[0] if k.endswith("-ACC")] if rows else []
    header = ["arch", "params", "GFLOPs", "act. (M)", "ms/crop b1", "ms/crop b64", "peak MB b64", "A-PSNR",
              "A-SSIM", *acc_keys]

    body = [[r["label"], f"{r['params']:,}", f"{r['flops'] / 1e9:.3f}", f"{r['activations'] / 1e6:.3f}",
             f"{r['ms_per_crop_b1']:.2f}", f"{r['ms_per_crop_b64']:.3f}", _fmt(r["peak_mb"], "{:.1f}"),
             _fmt(r["psnr"], "{:.2f}"), _fmt(r["ssim"], "{:.4f}"), *(_fmt(r[k], "{:.2f}") for k in acc_keys)]
            for r in rows]
    return _markdown(header, body)


def write(rows: list[dict], out_dir: str) -> list[Path]:
    out = Path(out_dir)
    return [atomic_write_text(out / "efficiency.md", render(rows) + "\n"),
            atomic_write_text(out / "efficiency.json", json.dumps(rows, indent=2) + "\n")]
