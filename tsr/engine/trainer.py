"""The trainer: one loop for every stage (sr, recognizer, joint_image, joint_feature); the config decides which
parts exist, which train, which tasks carry loss and how the losses are weighted (tsr.engine.tasks).

torchrun sets RANK / WORLD_SIZE; without it the same code runs single-process. DDP wraps the full model once;
rank 0 writes checkpoints, TensorBoard and the log. Every checkpoint is written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from tsr import dist
from tsr.checkpoint import (capture_rng_state, load_model_state, read_checkpoint, restore_rng_state, save_checkpoint,
                            unwrap)
from tsr.config import ConfigError, build_config, save_config
from tsr.data.lmdb_dataset import build_train_dataset, collate, dataset_options, load_test_splits
from tsr.data.sampler import ResumableDistributedSampler
from tsr.engine.monitor import Monitor
from tsr.engine.optim import build_optimizer, build_scheduler
from tsr.engine.tasks import StageTasks
from tsr.engine.validation import Validator
from tsr.errors import DataError, TsrError
from tsr.io import atomic_write_text
from tsr.metrics.tables import render_all
from tsr.models.build import build_model
from tsr.perf import fast_path
from tsr.perf.timing import Throughput

log = logging.getLogger("tsr.train")

LAST, BEST_ACC, BEST_PSNR = "last.pth", "best_acc_model.pth", "best_psnr_model.pth"
# Settings of how fast a run goes, never of what it computes: a finished run is reused and an interrupted one
# resumed whatever they are.
SPEED_ONLY = {"data.num_workers", "data.cache", "eval.batch_size"}
# What a resumed run may change without breaking exactness: those, how long it runs and what it reports.
RESUME_MAY_CHANGE = SPEED_ONLY | {"train.steps", "train.val_every", "train.val_limit", "train.save_every",
                                  "train.log_every", "train.num_images"}


class TrainingError(TsrError):
    """The run cannot go on (a non-finite loss, ranks out of step); the message says what and where."""


@dataclass
class TrainerState:
    """What besides weights and optimizer a resumed run needs to continue exactly where it stopped."""

    step: int = 0            # optimizer steps done
    epoch: int = 0
    consumed: int = 0        # samples of `epoch` this rank has used (resume skips them)
    world_size: int = 1      # ranks that wrote this state: `consumed` is per rank, so a resume needs as many
    best_acc: Optional[float] = None
    best_acc_step: Optional[int] = None
    best_psnr: Optional[float] = None
    best_psnr_step: Optional[int] = None

    def state_dict(self) -> dict:
        return asdict(self)


def run_dir_of(cfg: dict) -> Path:
    return Path(cfg["run"]["out_root"]) / cfg["run"]["name"]


def train(cfg: dict, resume: Optional[str] = None) -> dict:
    """Train one stage from `cfg` (resolved); `resume`: a checkpoint (or a run folder holding last.pth) to
    continue strictly. Returns the summary written to RUN/summary.json."""
    with dist.session(cfg["train"]["device"], setting="train.device") as device:
        return _Run(cfg, device, resume).fit()


def previous_run(cfg: dict) -> str:
    """What the run folder of `cfg` holds: "none", "finished" (summary.json written) or "interrupted" (a last.pth,
    no summary). A folder holding a run made with another config is an error naming the differing keys."""
    run_dir = run_dir_of(cfg)
    if not (run_dir / LAST).exists():
        return "none"
    differing = config_changes(read_checkpoint(run_dir / LAST, expected_format="tsr")["config"], cfg, SPEED_ONLY)
    if differing:
        raise TsrError(f"{run_dir} holds a run made with another config (differs in {', '.join(differing[:5])}); "
                       "choose another run.name, or continue it with --resume")
    return "finished" if (run_dir / "summary.json").exists() else "interrupted"


def config_changes(saved: dict, cfg: dict, allowed: set[str]) -> list[str]:
    """Keys (with both values) in which `cfg` differs from a run's saved config, except the `allowed` ones. The
    saved config gets today's defaults first: a key added to tsr since that run is no change."""
    try:
        saved = build_config(saved, source="the run's saved config")
    except ConfigError:
        pass                          # a key tsr no longer has: the comparison below names it
    return [k for k in _differing_keys(saved, cfg) if k.split(" ")[0] not in allowed]


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _differing_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            keys.append(f"{prefix}{key} ({x!r} vs {y!r})")
    return keys


def resolve_resume(resume: str) -> Path:
    """A checkpoint path, or a run folder -> its last.pth."""
    path = Path(resume)
    return path / LAST if path.is_dir() else path


class _Run:
    def __init__(self, cfg: dict, device: torch.device, resume: Optional[str]):
        self.cfg, self.device, self.train_cfg = cfg, device, cfg["train"]
        self.run_dir = run_dir_of(cfg)
        self.is_main, self.world = dist.is_main(), dist.world_size()
        self.micro_batch = _micro_batch(self.train_cfg, self.world)
        _seed_everything(cfg["run"]["seed"] + dist.rank())
        checkpoint = self._check_run_dir(resume)

        self.model = build_model(cfg)
        if checkpoint is None and self.train_cfg["init"]:
            self._init_from(self.train_cfg["init"])
        self.tasks = StageTasks(cfg, self.model)
        if self.train_cfg["sync_bn"] and device.type != "cuda":
            raise ConfigError("train.sync_bn=true needs CUDA (torch's SyncBatchNorm runs on GPU modules only); on CPU "
                              "each rank keeps batch statistics of its own batches and DDP copies rank 0's buffers "
                              "to all ranks at every forward")
        if self.train_cfg["sync_bn"] and self.world > 1:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.channels_last = self.train_cfg["channels_last"]
        fast_path.configure_backends(device)
        fast_path.to_device(self.model, device, self.channels_last)
        self.amp = fast_path.autocast_dtype(self.train_cfg["amp"], device)
        self.optimizer = build_optimizer(self.model, self.train_cfg, fused=device.type == "cuda")
        self.scheduler = build_scheduler(self.optimizer, self.train_cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp is torch.float16)
        self.state = TrainerState(world_size=self.world)
        if checkpoint is not None:
            self._restore(checkpoint)
        # Every rank must start from the same state; ranks that see different run folders (nodes without a shared
        # filesystem) would otherwise train out of step or wait forever in a collective.
        starts = dist.all_gather_object((self.state.step, self.state.epoch, self.state.consumed))
        if len(set(starts)) != 1:
            raise TrainingError(f"ranks start from different states (step, epoch, samples used): {starts}; every node "
                                f"must see the same run folder {self.run_dir} (a shared filesystem)")
        # DDP after loading: it broadcasts rank 0's weights and buffers to all ranks at construction.
        self.ddp = (DistributedDataParallel(unwrap(self.model), device_ids=[device] if device.type == "cuda" else None)
                    if self.world > 1 else self.model)
        if self.train_cfg["compile"]:
            # the training forward only; checkpoints and validation use the plain model (same parameters)
            self.ddp = torch.compile(self.ddp)
        self._build_data()
        self.validator = Validator(cfg, self.val_splits, device)
        self.monitor = Monitor(self.run_dir, self.is_main, self.train_cfg["steps"], self.state.step)

    # ------------------------------------------------------------------------------------------ set-up

    def _check_run_dir(self, resume: Optional[str]) -> Optional[dict]:
        """The checkpoint to resume from, or None for a fresh run; a fresh run never overwrites another's."""
        if resume is not None:
            path = resolve_resume(resume)
            checkpoint = read_checkpoint(path, expected_format="tsr")
            if path.resolve().parent != self.run_dir.resolve():
                raise TsrError(f"--resume {path} belongs to the run folder {path.parent}, but this config's run folder "
                               f"(run.out_root/run.name) is {self.run_dir}; resume without --config, or start a new "
                               f"run from its weights with train.init={path}")
            differing = config_changes(checkpoint["config"], self.cfg, RESUME_MAY_CHANGE)
            if differing:
                raise TsrError(f"--resume {path}: the given config differs from the run's in {', '.join(differing[:5])}; "
                               f"a resumed run may change only {', '.join(sorted(RESUME_MAY_CHANGE))}")
            log.info("resuming from %s (step %d)", path, checkpoint["step"])
            return checkpoint
        if (self.run_dir / LAST).exists():
            raise TsrError(f"{self.run_dir} already holds {LAST}: continue it with --resume {self.run_dir}, or "
                           "choose another run.name (nothing was overwritten)")
        if self.is_main:
            save_config(self.cfg, self.run_dir / "config.yaml")
        return None

    def _init_from(self, path: str) -> None:
        """Start this stage from an earlier stage's (or a public) checkpoint: one strict=False load, reported."""
        checkpoint = read_checkpoint(path)
        report = load_model_state(self.model, checkpoint["model"], strict=False, source=f"train.init {path}")
        if not report.loaded:
            raise TsrError(f"train.init {path}: no tensor of it fits this model (parts {list(self.model.keys())}):\n"
                           f"{report}")
        if self.is_main:
            log.info("%s", report)

    def _restore(self, checkpoint: dict) -> None:
        missing = [k for k in ("optimizer", "scheduler", "trainer") if k not in checkpoint]
        if missing:
            raise TsrError(f"cannot resume: the checkpoint has no {missing} (a best_* or converted checkpoint holds "
                           f"weights only; resume from {LAST}, or start a new run with train.init=PATH)")
        load_model_state(self.model, checkpoint["model"], strict=True, source="resume")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if "scaler" in checkpoint and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainerState(**checkpoint["trainer"])
        if self.state.world_size != self.world:
            raise TsrError(f"cannot resume exactly: the checkpoint was written by {self.state.world_size} rank(s) and "
                           f"this run has {self.world}; each rank's position in the epoch is per rank. Resume with "
                           f"{self.state.world_size} processes, or start a new run from its weights with train.init=PATH")
        rng = checkpoint.get("rng")
        if isinstance(rng, list) and len(rng) == self.world:
            restore_rng_state(rng[dist.rank()])
        else:
            log.warning("resume: the checkpoint's RNG states are for %s ranks, this run has %d; RNG re-seeded",
                        len(rng) if isinstance(rng, list) else "no", self.world)

    def _build_data(self) -> None:
        data = self.cfg["data"]
        dataset = build_train_dataset(data["train_roots"], **dataset_options(data))
        self.sampler = ResumableDistributedSampler(dataset, self.world, dist.rank(), seed=self.cfg["run"]["seed"])
        if len(self.sampler) // self.micro_batch == 0:
            raise DataError(f"data.train_roots {data['train_roots']} hold {len(dataset)} usable samples: too few for "
                            f"one batch of {self.micro_batch} per rank on {self.world} rank(s) (train.batch_size "
                            f"{self.train_cfg['batch_size']})")
        workers = data["num_workers"]
        # The loader draws its workers' base seed from this generator, re-seeded every epoch (see _batches): a
        # resumed run neither consumes an extra draw of the global RNG nor gives workers other seeds.
        self.loader_rng = torch.Generator()
        self.loader = DataLoader(dataset, batch_size=self.micro_batch, sampler=self.sampler, num_workers=workers,
                                 collate_fn=collate, drop_last=True, pin_memory=self.device.type == "cuda",
                                 persistent_workers=workers > 0, generator=self.loader_rng)
        self.val_splits = load_test_splits(data["test_root"], data["test_splits"], **dataset_options(data))

    # -------------------------------------------------------------------------------------------- loop

    def _batches(self) -> Iterator[dict]:
        """Training batches forever, epoch after epoch; state.epoch / state.consumed say where we are."""
        while True:
            self.sampler.set_epoch(self.state.epoch, start=self.state.consumed)
            self.loader_rng.manual_seed(self.cfg["run"]["seed"] * 1_000_003 + self.state.epoch * 1009 + dist.rank())
            for batch in self.loader:
                self.state.consumed += len(batch["label"]) + batch["corrupt"]
                if not batch["label"]:
                    # this rank fails alone; torchrun then stops the others (they wait in the next all-reduce)
                    raise DataError(f"every sample of a training batch ({batch['corrupt']}) was unreadable; the "
                                    f"LMDBs {self.cfg['data']['train_roots']} look damaged")
                yield batch
            self.state.epoch, self.state.consumed = self.state.epoch + 1, 0

    def fit(self) -> dict:
        train, state = self.train_cfg, self.state
        if self.is_main:
            log.info("run %s: %d rank(s) on %s, global batch %d = %d/rank x %d accumulation, amp %s, channels_last %s"
                     "\n%s", self.run_dir, self.world, self.device, train["batch_size"], self.micro_batch,
                     train["accum_steps"], self.amp or "off", self.channels_last, unwrap(self.model).summary())
        batches, throughput, corrupt = self._batches(), Throughput(), 0
        try:
            while state.step < train["steps"]:
                started = time.perf_counter()
                losses, total, step_corrupt, step_images = self._step(batches)
                # training only: validation and saving are excluded
                throughput.add(step_images, time.perf_counter() - started)
                state.step += 1
                corrupt += step_corrupt
                self.monitor.step(state.step, total, throughput.rate)
                if state.step % train["log_every"] == 0 or state.step == train["steps"]:
                    self._log_scalars(total, losses, throughput.rate, corrupt)
                validate = (train["val_every"] and state.step % train["val_every"] == 0) or state.step == train["steps"]
                if validate:
                    self._validate()
                if validate or state.step % train["save_every"] == 0:
                    self._save(LAST)
            return self._finish(throughput)
        finally:
            self.monitor.close()

    def _step(self, batches: Iterator[dict]) -> tuple[dict, float, int, int]:
        """One optimizer step over accum_steps micro-batches -> (mean task losses over ranks, mean total, corrupt
        samples seen on all ranks, images used on all ranks)."""
        accum = self.train_cfg["accum_steps"]
        self.optimizer.zero_grad(set_to_none=True)
        sums: Optional[torch.Tensor] = None
        for micro in range(accum):
            batch = next(batches)
            # Gradients are all-reduced only at the last micro-batch: no_sync skips DDP's all-reduce for the
            # others, whose gradients just accumulate locally (same result, accum_steps times less traffic).
            sync = micro == accum - 1 or self.world == 1
            with nullcontext() if sync else self.ddp.no_sync():
                total, losses = self.tasks.forward_losses(self.ddp, batch, self.device, self.amp, self.channels_last,
                                                          step=self.state.step)
                self.scaler.scale(total / accum).backward()
            values = torch.stack([total.detach().float()] + [losses[t].detach().float() for t in self.tasks.tasks])
            sums = values if sums is None else sums + values
            corrupt_images = torch.tensor([batch["corrupt"], len(batch["label"])], dtype=torch.float32)
            counts = corrupt_images if micro == 0 else counts + corrupt_images
        # one small all-reduce per step: the logged losses are the mean over ranks, and every rank sees a
        # non-finite loss on any rank, so all stop together (no rank left waiting in a collective)
        reduced = dist.all_reduce_sum(torch.cat([sums.cpu() / accum, counts]))
        n_tasks = len(self.tasks.tasks)
        mean = reduced[: 1 + n_tasks] / self.world
        if not torch.isfinite(mean).all():
            self._stop_non_finite(mean)
        if self.train_cfg["clip_grad_norm"] > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(unwrap(self.model).trainable_parameters(), self.train_cfg["clip_grad_norm"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        task_losses = {t: float(v) for t, v in zip(self.tasks.tasks, mean[1:])}
        return task_losses, float(mean[0]), int(reduced[-2]), int(reduced[-1])

    def _stop_non_finite(self, mean: torch.Tensor) -> None:
        names = ["total", *self.tasks.tasks]
        values = ", ".join(f"{n}={float(v):.4g}" for n, v in zip(names, mean))
        last = self.run_dir / LAST
        kept = (f"the last checkpoint {last} is intact" if last.exists()
                else "no checkpoint was written yet")
        raise TrainingError(f"non-finite loss at step {self.state.step + 1} ({values}); stopped before the "
                            f"optimizer step, {kept}. Lower train.lr, set train.clip_grad_norm, or check the data")

    # ---------------------------------------------------------------------------- reporting and saving

    def _log_scalars(self, total: float, losses: dict, rate: float, corrupt: int) -> None:
        values = {"loss/total": total, **{f"loss/{t}": v for t, v in losses.items()},
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": rate, "data/corrupt": corrupt}
        values.update(self.tasks.weighting_scalars())
        self.monitor.scalars(self.state.step, values)

    def _validate(self) -> None:
        dist.broadcast_buffers(unwrap(self.model))
        results, score, pictures = self.validator.run(self.model)
        step, state = self.state.step, self.state
        if not self.is_main:
            return
        splits = list(self.validator.splits)
        self.monitor.message(f"validation at step {step}:\n{render_all(results, splits)}")
        values = {}
        for split, result in dict(results)[self.validator.scored_row(self.model)].items():
            values.update({f"val/{split}/{m}": result[m] for m in ("acc", "psnr", "ssim") if result[m] is not None})
        values.update({f"val/A/{m}": v for m, v in score.items() if v is not None})
        self.monitor.scalars(step, values)
        for split, image in pictures.items():
            self.monitor.picture(f"val/{split}", image, step)
        for metric, name in (("acc", BEST_ACC), ("psnr", BEST_PSNR)):
            value, best = score[metric], getattr(state, f"best_{metric}")
            if value is not None and (best is None or value > best):
                setattr(state, f"best_{metric}", value)
                setattr(state, f"best_{metric}_step", step)
                self._write(name, weights_only=True, metrics={"val": dict(results), f"A-{metric}": value})
                self.monitor.message(f"new best A-{metric.upper()} {value:.4g} at step {step}: {self.run_dir / name}")

    def _save(self, name: str) -> None:
        # every rank's RNG, so that each continues its own stream after a resume (collective: all ranks call)
        rng = dist.all_gather_object(capture_rng_state())
        if self.is_main:
            self._write(name, rng=rng)

    def _write(self, name: str, weights_only: bool = False, metrics: Optional[dict] = None, rng=None) -> Path:
        extra = {} if weights_only else dict(
            optimizer=self.optimizer, scheduler=self.scheduler, trainer=self.state,
            scaler=self.scaler if self.scaler.is_enabled() else None, rng=rng)
        return save_checkpoint(self.run_dir / name, self.model, self.cfg, self.state.step, metrics=metrics, **extra)

    def _finish(self, throughput: Throughput) -> dict:
        dist.broadcast_buffers(unwrap(self.model))
        checksums = dist.all_gather_object(_weights_digest(unwrap(self.model)))
        if len(set(checksums)) != 1:
            raise TrainingError(f"ranks hold different weights after training ({checksums}); DDP lost sync")
        state = self.state
        summary = {"run_dir": str(self.run_dir), "steps": state.step, "world_size": self.world,
                   "device": str(self.device), "images_per_s": throughput.rate,
                   "images_per_s_steady": throughput.steady, "rank_checksums": checksums,
                   "best_acc": state.best_acc, "best_acc_step": state.best_acc_step,
                   "best_psnr": state.best_psnr, "best_psnr_step": state.best_psnr_step}
        if self.is_main:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
            self.monitor.message(f"done: {state.step} steps, {throughput.rate:.1f} images/s; weights identical on "
                                 f"{self.world} rank(s); checkpoints in {self.run_dir}")
        return summary


def _micro_batch(train: dict, world: int) -> int:
    """The per-rank batch of one micro-step, after checking the step settings."""
    batch, accum = train["batch_size"], train["accum_steps"]
    if accum < 1 or batch < 1 or batch % (world * accum):
        raise ConfigError(f"train.batch_size {batch} must be a positive multiple of ranks x train.accum_steps "
                          f"= {world} x {accum} (it is the global batch per optimizer step)")
    for key in ("steps", "save_every", "log_every"):
        if train[key] < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {train[key]}")
    if train["val_every"] < 0:
        raise ConfigError(f"train.val_every must be >= 0 (0: only at the end), got {train['val_every']}")
    return batch // (world * accum)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _weights_digest(model) -> str:
    """sha256 over every tensor's bytes in key order: equal digests = bit-identical weights and buffers."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]

