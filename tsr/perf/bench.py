"""`tsr bench`: throughput of the fast path (tsr.engine.fast_path: autocast, channels_last, cuDNN benchmark, fused
Adam) against plain fp32 eager, measured in the same run so that each speed-up is a ratio.

Figures: training images/s of every stage (random tensors of the TextZoom sizes, so the model alone is timed),
evaluation images/s (the one evaluator on a test LMDB: SR forward, recognizer, PSNR, SSIM), SR inference of an
int8 checkpoint against the same network in fp32 (CPU; the "fast path" column is int8 there), data-loading
images/s from a training LMDB (decoded cache + worker processes + pinned memory vs decoding in the main
process); beside each speed the peak tensor memory of one step (tsr.perf.memory: the CUDA allocator's peak,
counted tensor by tensor on CPU).
"""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader

from tsr import inference
from tsr.charset import alphabet_for
from tsr.data.lmdb_dataset import build_train_dataset, collate, dataset_options, first_records, load_test_splits
from tsr.engine import fast_path
from tsr.engine.evaluator import evaluate, model_row
from tsr.engine.optim import build_optimizer, build_scheduler
from tsr.engine.step import OptimizerStep
from tsr.engine.tasks import StageTasks
from tsr.engine.timing import timed
from tsr.errors import DataError
from tsr.images import hr_shape, lr_shape
from tsr.models.build import build_model
from tsr.perf.latency import compare_sr_latency_ms
from tsr.perf.memory import peak_memory_mb, state_tensors


@dataclass
class Figure:
    name: str
    eager: float                    # images/s, plain fp32 eager
    fast: float                     # images/s, fast path
    peak_mb_eager: Optional[float] = None    # peak tensor memory of one step (training) or one batch (evaluation)
    peak_mb_fast: Optional[float] = None

    @property
    def speedup(self) -> float:
        return self.fast / self.eager

    def as_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def _random_batch(cfg: dict, batch: int, seed: int = 0) -> dict:
    data = cfg["data"]
    rng = random.Random(seed)
    alphabet = alphabet_for(data["label_filter"])
    generator = torch.Generator().manual_seed(seed)
    return {"lr": torch.rand(batch, *lr_shape(data), generator=generator),
            "hr": torch.rand(batch, *hr_shape(data), generator=generator),
            "label": ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 10))) for _ in range(batch)],
            "corrupt": 0}


def bench_training(name: str, cfg: dict, device: torch.device, batch: int, steps: int) -> Figure:
    """One stage's training step in both modes: the trainer's own step (tsr.engine.step: forward, losses,
    backward, clipping, optimizer, schedule) on one micro-batch of `batch` images, every task on."""
    seconds, peak_mb = {}, {}
    for fast in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg)
        fast_path.to_device(model.train(), device, channels_last=fast)
        amp = fast_path.autocast_dtype("auto", device) if fast else None
        optimizer = build_optimizer(model, cfg["train"], fused=fast and device.type == "cuda")
        optimizer_step = OptimizerStep(model, model, StageTasks(cfg, model), optimizer,
                                       build_scheduler(optimizer, cfg["train"]),
                                       torch.amp.GradScaler(device.type, enabled=amp is torch.float16), device, amp,
                                       channels_last=fast, clip_grad_norm=cfg["train"]["clip_grad_norm"])
        sample = _random_batch(cfg, batch)
        batches = itertools.repeat(sample)

        def step():
            optimizer_step(batches, step=None)

        seconds[fast] = timed(step, steps, device)
        peak_mb[fast] = peak_memory_mb(step, device, state_tensors(model, optimizer, sample))
    return Figure(f"train {name}", batch / seconds[False], batch / seconds[True], peak_mb[False], peak_mb[True])


def bench_evaluation(cfg: dict, test_root: str, device: torch.device, limit: int) -> Figure:
    """The evaluator over `limit` samples of each test split (all with limit 0): SR, the model's recognizer, PSNR,
    SSIM; the peak memory is that of reading one evaluation batch."""
    data = cfg["data"]
    splits = load_test_splits(test_root, data["test_splits"], allow_empty=True,
                              **{**dataset_options(data), "cache": False})
    splits = first_records(splits, limit if limit > 0 else None)
    count = sum(len(v) for v in splits.values())
    if count == 0:
        raise DataError(f"{test_root} holds no test samples in {', '.join(splits)}: nothing to time the evaluator on")
    model = build_model(cfg)
    # the memory figure reads one evaluation batch: the first non-empty one (a split may be empty or damaged)
    batches = (collate([s[i] for i in range(min(cfg["eval"]["batch_size"], len(s)))])["lr"] for s in splits.values())
    lr_batch = next((lr for lr in batches if lr.shape[0] > 0), None)
    seconds, peak_mb = {}, {}
    for fast in (False, True):
        fast_path.to_device(model.eval(), device, channels_last=fast)
        amp = fast_path.autocast_dtype("auto", device) if fast else None

        def read(lr, fast=fast, amp=amp):
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                images, words = inference.super_resolve_and_read(model, fast_path.input_to_device(lr, device, fast), cfg)
            return images.float(), words

        def run(read=read):
            evaluate([model_row("model", read, reads_own_text=True)], splits, batch_size=cfg["eval"]["batch_size"],
                     num_workers=data["num_workers"], device=device)

        seconds[fast] = timed(run, 1, device)
        if lr_batch is not None:
            with torch.no_grad():
                peak_mb[fast] = peak_memory_mb(lambda: read(lr_batch), device, state_tensors(model, lr_batch))
    return Figure(f"eval ({count} images, ACC+PSNR+SSIM)", count / seconds[False], count / seconds[True],
                  peak_mb.get(False), peak_mb.get(True))


def bench_int8(int8_model, cfg: dict, batches: tuple[int, ...] = (1, 64), repeats: int = 10) -> list[Figure]:
    """SR inference images/s on CPU of an int8 model (`cfg` its config) and of the same network built in fp32 (the
    weights do not change the speed), at each batch size; the int8 figure sits in the fast-path column."""
    from tsr.config import build_config

    data, cpu = cfg["data"], torch.device("cpu")
    # the fp32 baseline channels-last, the faster of fp32's memory formats on CPU, whatever the int8 checkpoint's
    # train.channels_last: a QAT stage trains NCHW (configs/qat.yaml), and an NCHW baseline made int8 look 2.15x
    # as fast at batch 64 where it is 1.6x (README, int8)
    fp32_model = fast_path.to_device(build_model(build_config(cfg, ["model.quantization=fp32"])), cpu,
                                     channels_last=True).eval()
    figures = []
    for batch in batches:
        ms = compare_sr_latency_ms({"fp32": fp32_model, "int8": int8_model}, lr_shape(data), batch, repeats, cpu)
        figures.append(Figure(f"SR inference, batch {batch}: fast path = int8 ({cfg['model']['sr']['type']})",
                              1e3 / ms["fp32"], 1e3 / ms["int8"]))
    return figures


def bench_loading(cfg: dict, train_root: str, device: torch.device, batch: int, batches: int) -> Figure:
    """Training batches from an LMDB: decoding in the main process (plain) vs the fast path, every pair decoded
    once into memory (data.cache) and served by data.num_workers persistent workers into pinned memory. The
    cache's build time is reported beside the figure: it is paid once per run, not per epoch."""
    data = cfg["data"]
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    rates, note = {}, ""
    for fast in (True, False):  # the cache's build reads every page first: both then time a warm page cache
        started = time.perf_counter()
        dataset = build_train_dataset([train_root], **{**dataset_options(data), "cache": fast})
        if fast:
            note = f", cache built in {time.perf_counter() - started:.1f} s"
        if len(dataset) < 2 * batch:
            raise DataError(f"{train_root} holds {len(dataset)} samples: too few to time loading batches of {batch}")
        workers = data["num_workers"] if fast else 0
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate,
                            pin_memory=fast and device.type == "cuda", persistent_workers=fast and workers > 0)
        iterator = iter(loader)
        next(iterator)                                  # worker start-up is not throughput
        start, seen = time.perf_counter(), 0
        for _ in range(min(batches, len(loader) - 1)):  # within one epoch
            seen += len(next(iterator)["label"])
        rates[fast] = seen / (time.perf_counter() - start)
    return Figure(f"data loading (batch {batch}, {data['num_workers']} workers{note})", rates[False], rates[True])


def render(figures: list[Figure], device: torch.device, amp: Optional[torch.dtype]) -> str:
    lines = [f"device: {device}; fast path: autocast {amp or 'off'}, channels_last, "
             f"{'cudnn.benchmark, fused Adam' if device.type == 'cuda' else 'oneDNN'}", "",
             "| figure | fp32 eager (img/s) | fast path (img/s) | speed-up | peak MB eager / fast |",
             "|---|---:|---:|---:|---:|"]
    for f in figures:
        peak = f"{f.peak_mb_eager:.0f} / {f.peak_mb_fast:.0f}" if f.peak_mb_fast is not None else "-"
        lines.append(f"| {f.name} | {f.eager:.1f} | {f.fast:.1f} | {f.speedup:.2f}x | {peak} |")
    return "\n".join(lines)
