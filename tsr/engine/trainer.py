"""The trainer: one loop for every stage (sr, recognizer, joint_image, joint_feature); the config decides which
parts exist, which train, which tasks carry loss and how the losses are weighted (tsr.engine.tasks).

torchrun sets RANK / WORLD_SIZE; without it the same code runs single-process. DDP wraps the full model once;
rank 0 writes checkpoints, TensorBoard and the log. Every checkpoint is written atomically, and only with finite
weights. SIGTERM / SIGINT stop every rank after the same step, with last.pth saved (tsr.engine.stop_signals).
"""
from __future__ import annotations

import json
import logging
import random
import signal
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from tsr import dist, provenance
from tsr.checkpoint import unwrap
from tsr.checkpoint.integrity import non_finite_keys, tensor_digest
from tsr.config import ConfigError
from tsr.data.lmdb_dataset import build_train_dataset, collate, dataset_options, load_test_splits
from tsr.data.sampler import ResumableDistributedSampler
from tsr.engine import console_log, fast_path
from tsr.engine.monitor import Monitor
from tsr.engine.optim import build_optimizer, build_scheduler
from tsr.engine.rng import capture_rng_state, restore_rng_state
from tsr.engine.run_folder import LAST, RunFolder
from tsr.engine.step import OptimizerStep
from tsr.engine.stop_signals import StopSignals, Stopped
from tsr.engine.tasks import StageTasks
from tsr.engine.timing import Throughput
from tsr.engine.validation import Validator
from tsr.errors import DataError, TsrError
from tsr.io import atomic_write_text
from tsr.metrics.tables import render_all
from tsr.models.build import build_model

log = logging.getLogger("tsr.train")

class TrainingError(TsrError):
    """The run cannot go on (a non-finite loss, ranks out of step); the message says what and where."""


@dataclass
class TrainerState:
    """What besides weights and optimizer a resumed run needs to continue exactly where it stopped."""

    step: int = 0            # optimizer steps done
    epoch: int = 0
    consumed: int = 0        # samples of `epoch` this rank has used (resume skips them)
    corrupt: int = 0         # unreadable training samples seen so far, all ranks (logged as data/corrupt)
    world_size: int = 1      # ranks that wrote this state: `consumed` is per rank, so a resume needs as many
    best_acc: Optional[float] = None
    best_acc_step: Optional[int] = None
    best_psnr: Optional[float] = None
    best_psnr_step: Optional[int] = None

    def state_dict(self) -> dict:
        return asdict(self)


def train(cfg: dict, resume: Optional[str] = None) -> dict:
    """Train one stage from `cfg` (resolved); `resume`: a checkpoint (or a run folder holding last.pth) to
    continue strictly. Returns the summary written to RUN/summary.json."""
    with dist.session(cfg["train"]["device"], setting="train.device") as device, StopSignals() as signals, \
            console_log.capture(dist.is_main()) as run_log:
        folder = RunFolder(cfg, dist.is_main())
        try:
            return _Run(cfg, device, resume, folder, signals, run_log).fit()
        finally:
            folder.close()


class _Run:
    def __init__(self, cfg: dict, device: torch.device, resume: Optional[str], folder: RunFolder,
                 signals: StopSignals, run_log: Optional[console_log.RunLog] = None):
        self.cfg, self.device, self.train_cfg = cfg, device, cfg["train"]
        self.folder, self.signals = folder, signals
        self.run_dir = self.folder.path
        self.is_main, self.world = dist.is_main(), dist.world_size()
        self.micro_batch = _micro_batch(self.train_cfg, self.world)
        _seed_everything(cfg["run"]["seed"] + dist.rank())
        checkpoint = self.folder.open(resume)
        if run_log is not None:
            run_log.open(self.run_dir)  # the folder is this run's now (open refuses another run's)
            log.info("command: %s", provenance.collect()["command"])

        self.model = build_model(cfg)
        if checkpoint is None and self.train_cfg["init"]:
            self.folder.init_weights(self.model, self.train_cfg["init"])
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
        self.stop_signal: Optional[int] = None   # set by _step when any rank received SIGTERM / SIGINT
        self.unreadable = 0   # samples of this step's all-unreadable batches on this rank (_batches, _reduce)
        if checkpoint is not None:
            self.state = TrainerState(**self.folder.restore(checkpoint, self.model, self.optimizer, self.scheduler,
                                                            self.scaler, self.world, dist.rank()))
        # Every rank must start from the same state; ranks that see different run folders (nodes without a shared
        # filesystem) would otherwise train out of step or wait forever in a collective.
        starts = dist.all_gather_object((self.state.step, self.state.epoch, self.state.consumed))
        if len(set(starts)) != 1:
            raise TrainingError(f"ranks start from different states (step, epoch, samples used): {starts}; every node "
                                f"must see the same run folder {self.run_dir} (a shared filesystem)")
        # DDP after loading: it broadcasts rank 0's weights and buffers to all ranks at construction.
        # what the training forward runs through: DDP, the plain model, or either compiled
        self.train_module = (DistributedDataParallel(unwrap(self.model),
                                                     device_ids=[device] if device.type == "cuda" else None)
                             if self.world > 1 else self.model)
        if self.train_cfg["compile"]:
            # the training forward only; checkpoints and validation use the plain model (same parameters)
            self.train_module = torch.compile(self.train_module)
        self.optimizer_step = OptimizerStep(
            self.train_module, self.model, self.tasks, self.optimizer, self.scheduler, self.scaler, device, self.amp,
            self.channels_last, self.train_cfg["accum_steps"], self.train_cfg["clip_grad_norm"], self.world > 1)
        self._build_data()
        self.validator = Validator(cfg, self.val_splits, device)
        self.monitor = Monitor(self.run_dir, self.is_main, self.train_cfg["steps"], self.state.step, run_log)
        self.saved_step = self.state.step if checkpoint is not None else None   # the step last.pth holds

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
            whole_epoch, readable = self.state.consumed == 0, False
            for batch in self.loader:
                self.state.consumed += len(batch["label"]) + batch["corrupt"]
                if not batch["label"]:
                    # Nothing to train on. Failing here alone would leave the other ranks waiting in DDP's gradient
                    # all-reduce until gloo / nccl fails them with a traceback: this rank runs the step on the next
                    # readable batch instead, and _reduce stops every rank before the update (the run stops, so
                    # the data position moved here is never saved)
                    self.unreadable += batch["corrupt"]
                    continue
                readable = True
                yield batch
            if whole_epoch and not readable:   # (else the next epoch would skip on forever)
                raise DataError(f"no sample of this rank's share of a training epoch was readable; the LMDBs "
                                f"{self.cfg['data']['train_roots']} look damaged")
            self.state.epoch, self.state.consumed = self.state.epoch + 1, 0

    def fit(self) -> dict:
        train, state = self.train_cfg, self.state
        if self.is_main:
            log.info("run %s: %d rank(s) on %s, global batch %d = %d/rank x %d accumulation, amp %s, channels_last %s"
                     "\n%s", self.run_dir, self.world, self.device, train["batch_size"], self.micro_batch,
                     train["accum_steps"], self.amp or "off", self.channels_last, unwrap(self.model).summary())
        batches, throughput = self._batches(), Throughput()
        try:
            while state.step < train["steps"]:
                started = time.perf_counter()
                losses, total, step_corrupt, step_images = self._step(batches)
                # training only: validation and saving are excluded
                throughput.add(step_images, time.perf_counter() - started)
                state.step += 1
                state.corrupt += step_corrupt
                self.monitor.step(state.step, total, throughput.rate)
                if state.step % train["log_every"] == 0 or state.step == train["steps"]:
                    self._log_scalars(total, losses, throughput.rate, state.corrupt)
                validate = (train["val_every"] and state.step % train["val_every"] == 0) or state.step == train["steps"]
                save = validate or state.step % train["save_every"] == 0 or self.stop_signal is not None
                if save:
                    self._check_weights()      # before validation: NaN weights give NaN scores, never a "best"
                if validate:
                    self._validate()
                if save:
                    self._save_last()
                if self.stop_signal is not None:
                    self._stop_on_signal()
            return self._finish(throughput)
        finally:
            self.monitor.close()

    def _step(self, batches: Iterator[dict]) -> tuple[dict, float, int, int]:
        """One optimizer step over accum_steps micro-batches -> (mean task losses over ranks, mean total, corrupt
        samples seen on all ranks, images used on all ranks)."""
        return self.optimizer_step(batches, self.state.step, self._reduce)

    def _reduce(self, losses: torch.Tensor, counts: torch.Tensor) -> tuple[dict, float, int, int]:
        """Between the backward passes and the update (tsr.engine.step): this rank's (total, *task losses) and
        (corrupt, images) -> _step's result, summed over ranks."""
        # one small all-reduce per step: the logged losses are the mean over ranks, and every rank sees a
        # non-finite loss, or a SIGTERM / SIGINT, on any rank, so all stop together (no rank left waiting in a
        # collective)
        received = self.signals.received
        flags = torch.tensor([received == signal.SIGTERM, received == signal.SIGINT, self.unreadable > 0],
                             dtype=torch.float32)
        reduced = dist.all_reduce_sum(torch.cat([losses, counts, flags]))
        if reduced[-1] > 0:
            self._stop_unreadable()
        if reduced[-3] > 0 or reduced[-2] > 0:
            self.stop_signal = signal.SIGTERM if reduced[-3] > 0 else signal.SIGINT
        reduced = reduced[:-3]
        n_tasks = len(self.tasks.tasks)
        mean = reduced[: 1 + n_tasks] / self.world
        if not torch.isfinite(mean).all():
            self._stop_non_finite(mean)
        task_losses = {t: float(v) for t, v in zip(self.tasks.tasks, mean[1:])}
        return task_losses, float(mean[0]), int(reduced[-2]), int(reduced[-1])

    def _stop_unreadable(self) -> None:
        """A rank met a training batch with no readable sample: every rank stops before the update; the rank(s)
        that met it say so, the others leave without a word (exit 2)."""
        message = ""
        if self.unreadable:
            message = (f"every sample of a training batch ({self.unreadable}) was unreadable; the LMDBs "
                       f"{self.cfg['data']['train_roots']} look damaged; stopped before step {self.state.step + 1}'s "
                       f"update; {self._last_saved()}")
        raise DataError(message)

    def _stop_non_finite(self, mean: torch.Tensor) -> None:
        names = ["total", *self.tasks.tasks]
        values = ", ".join(f"{n}={float(v):.4g}" for n, v in zip(names, mean))
        raise TrainingError(f"non-finite loss at step {self.state.step + 1} ({values}); stopped before the "
                            f"optimizer step; {self._last_saved()}. Lower train.lr, set train.clip_grad_norm, or "
                            "check the data")

    def _check_weights(self) -> None:
        """Stop before validating or saving weights that hold NaN / inf (every rank holds the same weights, so every
        rank stops here)."""
        bad = non_finite_keys(unwrap(self.model).state_dict())
        if bad:
            raise TrainingError(f"non-finite weights after step {self.state.step} in {len(bad)} tensor(s) "
                                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); nothing was saved from "
                                f"this step; {self._last_saved()}. Lower train.lr or set train.clip_grad_norm")

    def _last_saved(self) -> str:
        # which step the last checkpoint holds, not a verdict on it: weights can grow huge while still finite
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"the last checkpoint, {self.run_dir / LAST}, holds step {self.saved_step}"

    def _stop_on_signal(self) -> None:
        """After last.pth of this step is written: every rank waits for it, then all leave with 128 + signal."""
        dist.barrier()
        name = signal.Signals(self.stop_signal).name
        message = (f"{name} after step {self.state.step}: saved {self.run_dir / LAST}; continue with "
                   f"tsr train --resume {self.run_dir}") if self.is_main else ""
        raise Stopped(message, self.stop_signal)

    # ---------------------------------------------------------------------------- reporting and saving

    def _log_scalars(self, total: float, losses: dict, rate: float, corrupt: int) -> None:
        values = {"loss/total": total, **{f"loss/{t}": v for t, v in losses.items()},
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": rate, "data/corrupt": corrupt}
        # every group's rate: train.lr_scale makes parts differ (groups are named <part> / <part>.no_decay)
        values.update({f"lr/{group.get('name', i)}": group["lr"] for i, group in enumerate(self.optimizer.param_groups)})
        values.update(self.tasks.weighting_scalars())
        self.monitor.scalars(self.state.step, values)

    def _validate(self) -> None:
        # Validation leaves no trace in the RNG streams training draws from (the evaluator's loader draws its base
        # seed from torch's, tsr.data.blur from the same): how often a run validates, which train.val_every sets and
        # a resume may change, must not change its weights.
        rng = capture_rng_state()
        try:
            self._validate_and_keep_best()
        finally:
            restore_rng_state(rng)

    def _validate_and_keep_best(self) -> None:
        dist.broadcast_buffers(unwrap(self.model))
        results, score, pictures = self.validator.run(self.model)
        step, state = self.state.step, self.state
        if not self.is_main:
            return
        splits = list(self.validator.splits)
        self.monitor.message(f"validation at step {step} ({self.validator.reader(self.model)}):\n"
                             f"{render_all(results, splits)}")
        values = {}
        for split, result in dict(results)[self.validator.scored_row(self.model)].items():
            values.update({f"val/{split}/{m}": result[m] for m in ("acc", "psnr", "ssim") if result[m] is not None})
        values.update({f"val/A/{m}": v for m, v in score.items() if v is not None})
        self.monitor.scalars(step, values)
        for split, image in pictures.items():
            self.monitor.picture(f"val/{split}", image, step)
        for message in self.folder.save_best(state, score, results, self.model):
            self.monitor.message(message)

    def _save_last(self) -> None:
        # every rank's RNG, so that each continues its own stream after a resume (collective: all ranks call)
        rng = dist.all_gather_object(capture_rng_state())
        self.folder.save(LAST, self.model, self.state.step, optimizer=self.optimizer, scheduler=self.scheduler,
                         trainer=self.state, scaler=self.scaler if self.scaler.is_enabled() else None, rng=rng)
        self.saved_step = self.state.step

    def _finish(self, throughput: Throughput) -> dict:
        dist.broadcast_buffers(unwrap(self.model))
        # sha256 over every weight and buffer: equal digests = bit-identical weights on every rank
        checksums = dist.all_gather_object(tensor_digest(unwrap(self.model).state_dict())[:16])
        if len(set(checksums)) != 1:
            raise TrainingError(f"ranks hold different weights after training ({checksums}); DDP lost sync")
        state = self.state
        summary = {"run_dir": str(self.run_dir), "steps": state.step, "world_size": self.world,
                   "device": str(self.device), "images_per_s": throughput.rate,
                   "images_per_s_steady": throughput.steady, "rank_checksums": checksums,
                   "best_acc": state.best_acc, "best_acc_step": state.best_acc_step,
                   "best_psnr": state.best_psnr, "best_psnr_step": state.best_psnr_step,
                   "provenance": provenance.collect()}
        if self.is_main:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
            self.monitor.message(f"done: {state.step} steps, {throughput.rate:.1f} images/s; weights identical on "
                                 f"{self.world} rank(s); checkpoints in {self.run_dir}")
        return summary


def _micro_batch(train: dict, world: int) -> int:
    """The per-rank batch of one micro-step, after checking that the global batch splits evenly (the ranges of the
    step settings are checked with the config: tsr.config_ranges)."""
    batch, accum = train["batch_size"], train["accum_steps"]
    if accum < 1 or batch < 1 or batch % (world * accum):
        raise ConfigError(f"train.batch_size {batch} must be a positive multiple of ranks x train.accum_steps "
                          f"= {world} x {accum} (it is the global batch per optimizer step)")
    return batch // (world * accum)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
