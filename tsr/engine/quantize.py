"""`tsr quantize`: a trained checkpoint -> an int8 checkpoint (tsr.models.quantization does the model side).

    ptq  a float checkpoint (model.quantization: fp32): observers calibrate on training pairs' LR images, convert
    qat  a checkpoint of the QAT stage (configs/qat.yaml, model.quantization: qat): convert its fake-quantised net

The result is a tsr checkpoint like any other, with model.quantization: int8 in its config: `tsr eval`, `tsr sr`
and the API load it (built as an int8 structure, then loaded strictly), on CPU.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch.utils.data import DataLoader, Subset

from tsr.checkpoint import load_model_state, read_checkpoint, write_checkpoint
from tsr.config import build_config
from tsr.data.lmdb_dataset import build_train_dataset, collate, dataset_options
from tsr.errors import TsrError
from tsr.models import quantization
from tsr.models.build import build_model

log = logging.getLogger("tsr.quantize")

# what each mode reads: the checkpoint's model.quantization
SOURCE = {"ptq": "fp32", "qat": "qat"}


def quantize_checkpoint(ckpt: str, mode: str, out: str, calib_pairs: int = 512, batch_size: int = 64,
                        train_roots: Optional[Sequence[str]] = None, seed: int = 0,
                        engine: Optional[str] = None) -> dict:
    """Write the int8 version of `ckpt` to `out`; returns what was written (the checkpoint dict).
    PTQ calibrates on `calib_pairs` training pairs drawn at random (seeded) from `train_roots` (default: the
    checkpoint's data.train_roots). `engine`: the int8 kernels (default: the checkpoint's model.int8_engine), stored
    in the int8 checkpoint's config."""
    if mode not in SOURCE:
        raise TsrError(f"--mode must be one of {list(SOURCE)}, got {mode!r}")
    if engine is not None and engine not in quantization.ENGINES:
        raise TsrError(f"--engine must be one of {list(quantization.ENGINES)}, got {engine!r}")
    checkpoint = read_checkpoint(ckpt)
    cfg = build_config(checkpoint["config"], source=f"config stored in {ckpt}")
    found = cfg["model"]["quantization"]
    if found != SOURCE[mode]:
        hint = {"fp32": "use --mode ptq, or train configs/qat.yaml from it (train.init) and quantize that with "
                        "--mode qat",
                "qat": "use --mode qat", "int8": "it is int8 already"}[found]
        raise TsrError(f"--ckpt {ckpt} has model.quantization={found}, --mode {mode} reads a {SOURCE[mode]} "
                       f"checkpoint: {hint}")
    model = build_model(cfg)
    quantization.check_quantizable(model)
    load_model_state(model, checkpoint["model"], strict=True, source=ckpt)
    model.eval()
    engine = engine or cfg["model"]["int8_engine"]
    info = {"from": str(ckpt), "mode": mode, "engine": engine}
    if mode == "ptq":
        quantization.prepare(model, "ptq", engine)
        info["calibration_pairs"] = quantization.calibrate(
            model, _calibration_batches(cfg, calib_pairs, batch_size, train_roots, seed))
        log.info("calibrated on %d training pairs", info["calibration_pairs"])
    quantization.convert(model, engine)
    int8_cfg = copy.deepcopy(cfg)
    int8_cfg["model"]["quantization"] = "int8"
    int8_cfg["model"]["int8_engine"] = engine
    payload = {"format": "tsr", "version": 1, "model": model.state_dict(), "config": int8_cfg,
               "step": checkpoint.get("step", 0), "metrics": None, "quantized": info}
    write_checkpoint(Path(out), payload)
    return payload


def _calibration_batches(cfg: dict, pairs: int, batch_size: int, train_roots, seed: int):
    """LR batches [B, C, h, w] of `pairs` training pairs drawn at random (seeded)."""
    if pairs < 1 or batch_size < 1:
        raise TsrError(f"--calib-pairs and --batch-size must be >= 1, got {pairs} and {batch_size}")
    data = cfg["data"]
    dataset = build_train_dataset(list(train_roots or data["train_roots"]), **{**dataset_options(data), "cache": False})
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:pairs].tolist()
    loader = DataLoader(Subset(dataset, order), batch_size=batch_size, collate_fn=collate, num_workers=0)
    return (batch["lr"] for batch in loader if len(batch["label"]))
