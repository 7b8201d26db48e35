"""`tsr train ... --dry-run`: everything a run would check before its first step, plus one forward/backward on one
batch, and the plan; nothing is written (no run folder, config.yaml, checkpoint, log or TensorBoard event)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import DataLoader

from tsr.data.lmdb_dataset import build_train_dataset, collate, dataset_options, load_test_splits
from tsr.engine import fast_path
from tsr.engine.optim import build_optimizer
from tsr.engine.run_folder import BEST_ACC, BEST_PSNR, LAST, RunFolder
from tsr.engine.tasks import StageTasks
from tsr.engine.trainer import _micro_batch
from tsr.checkpoint.io import named_by
from tsr.errors import DataError, TsrError
from tsr.judges import load_judge
from tsr.models.build import build_model


def dry_run(cfg: dict, device: torch.device, world: int = 1, resume: Optional[str] = None) -> str:
    """Check `cfg` as `train(cfg, resume)` on `world` ranks would, run one training step's forward/backward on one
    micro-batch (no optimizer step), and return the plan as text. Raises the error the run would raise."""
    train, data = cfg["train"], cfg["data"]
    micro = _micro_batch(train, world)
    # is_main=False: the run folder's checks (resume, a fresh run never overwrites another) without writing
    folder = RunFolder(cfg, is_main=False)
    checkpoint = folder.open(resume)
    _check_writable(folder.path)
    model = build_model(cfg)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
    elif train["init"]:
        folder.init_weights(model, train["init"])     # (its errors name train.init)
    if cfg["eval"]["recognizer"] is not None and "sr" in model:
        # as validation loads it (tsr.engine.validation: it judges SR output only): KIND:PATH or a checkpoint
        # holding a recognizer; read as a bare checkpoint, a documented crnn:PATH failed here and passed in the run
        with named_by("eval.recognizer"):
            load_judge(cfg["eval"]["recognizer"])
    tasks = StageTasks(cfg, model)
    optimizer = build_optimizer(model, train)
    dataset = build_train_dataset(data["train_roots"], **dataset_options(data))
    if len(dataset) < micro * world:
        raise DataError(f"data.train_roots {data['train_roots']} hold {len(dataset)} usable samples: too few for "
                        f"one batch of {micro} per rank on {world} rank(s)")
    splits = load_test_splits(data["test_root"], data["test_splits"], **dataset_options(data))

    fast_path.to_device(model, device, train["channels_last"])
    batch = next(iter(DataLoader(dataset, batch_size=micro, shuffle=False, collate_fn=collate)))
    model.train()
    total, losses = tasks.forward_losses(model, batch, device, fast_path.autocast_dtype(train["amp"], device),
                                         train["channels_last"])
    total.backward()
    total = float(total.detach())
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not math.isfinite(total) or not all(torch.isfinite(g).all() for g in grads):
        raise TsrError(f"dry run: the first batch gives a non-finite loss or gradient (loss {total:.4g}); "
                       f"lower train.lr or check the data")
    return _plan(cfg, model, optimizer, folder.path, world, micro, len(dataset), splits, total,
                 {t: float(v.detach()) for t, v in losses.items()}, resume)


def _check_writable(run_dir: Path) -> None:
    """The run folder, or the nearest folder above it that exists, must be writable."""
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise TsrError(f"run folder {run_dir}: {existing} is not a writable folder (run.out_root / run.name)")


def _plan(cfg, model, optimizer, run_dir, world, micro, n_train, splits, total, losses, resume) -> str:
    train = cfg["train"]
    steps = train["steps"]
    rates = ", ".join(f"{g['name']} {g['lr']:.3g}" for g in optimizer.param_groups)
    epochs = steps * train["batch_size"] / max(n_train, 1)
    lines = [
        "dry run: every check passed; nothing was written",
        model.summary(),
        f"trainable parameters: {model.num_parameters(trainable_only=True):,} in {len(optimizer.param_groups)} "
        f"optimizer groups (lr: {rates})",
        f"batch: global {train['batch_size']} = {micro}/rank x {world} rank(s) x {train['accum_steps']} accumulation",
        f"steps: {steps} ({epochs:.2f} epochs of {n_train} training samples); tasks {list(train['tasks'])}, "
        f"weighting {train['weighting']}",
        f"first batch: loss {total:.4g} (" + ", ".join(f"{t} {v:.4g}" for t, v in losses.items()) + "), gradients finite",
        f"validation: every {train['val_every'] or steps} steps and at the end on "
        + ", ".join(f"{name} ({len(ds)})" for name, ds in splits.items()),
        f"run folder: {run_dir}" + (f" (resumed from {resume})" if resume else ""),
        f"  files: config.yaml, {LAST} (every {train['save_every']} steps), {BEST_ACC}, {BEST_PSNR}, log.jsonl, "
        f"train.log, summary.json, tb/",
    ]
    return "\n".join(lines)
