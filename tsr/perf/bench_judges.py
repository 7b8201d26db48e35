"""`tsr bench --judges`: how fast the three judges of the STISR literature (CRNN, ASTER with its beam search,
MORAN) read a test set through the one evaluator, all three in one pass as `tsr eval --recognizer ... x3` runs.

The judges have random weights (seed 0) at the public sizes: the same work per image as the public files, except
that ASTER's beam search stops an image only once it has 5 ended hypotheses, which random weights seldom give,
so its figure is close to the worst case (all 100 steps).

Beside wall-clock seconds, each figure gives the CPU seconds of this process (all its threads; data-loading workers
are other processes): on a shared machine wall time depends on the neighbours' load, CPU time much less."""
from __future__ import annotations

import time

import torch

from tsr.config import load_config
from tsr.data.lmdb_dataset import dataset_options, first_records, load_test_splits
from tsr.engine.evaluator import evaluate, hr_row
from tsr.errors import DataError
from tsr.judges import KINDS, LABELS, reader_for
from tsr.models.build import build_model


def random_judge(kind: str, device: torch.device):
    """A judge of `kind` at its public size with random weights (seed 0), read as tsr.judges reads it."""
    torch.manual_seed(0)
    cfg = load_config(overrides=["model.parts=[recognizer]", f"model.recognizer.type={kind}",
                                 "model.recognizer.trainable=none"])
    model = build_model(cfg).to(device).eval()
    return reader_for(model, cfg)


def bench_judges(test_root: str, device: torch.device, limit: int, batch_size: int = 64,
                 num_workers: int = 2) -> list[dict]:
    """-> [{name, images, seconds, images_per_s}] per judge (time inside its reading) and for the whole pass
    (loading, three readings, metrics) over the first `limit` samples of each split (all with 0)."""
    cfg = load_config()
    # as tsr bench's evaluation figure: an empty split is timed as what it is (load_test_splits refuses one otherwise)
    splits = load_test_splits(test_root, cfg["data"]["test_splits"], allow_empty=True,
                              **{**dataset_options(cfg["data"]), "cache": False})
    splits = first_records(splits, limit if limit > 0 else None)
    count = sum(len(v) for v in splits.values())
    if count == 0:
        raise DataError(f"{test_root} holds no test samples in {', '.join(splits)}: nothing to time the judges on")
    seconds = {LABELS[k]: 0.0 for k in KINDS}
    cpu = dict(seconds)

    def timed_reader(name, read):
        def call(images):
            started, started_cpu = time.perf_counter(), time.process_time()
            words = read(images)
            seconds[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - started_cpu
            return words
        return call

    judges = {LABELS[k]: timed_reader(LABELS[k], random_judge(k, device)) for k in KINDS}
    started, started_cpu = time.perf_counter(), time.process_time()
    evaluate([hr_row()], splits, judges=judges, batch_size=batch_size, num_workers=num_workers, device=device)
    total, total_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    figures = [{"name": name, "images": count, "seconds": s, "cpu_seconds": cpu[name], "images_per_s": count / s}
               for name, s in seconds.items()]
    figures.append({"name": "all three, one evaluator pass", "images": count, "seconds": total,
                    "cpu_seconds": total_cpu, "images_per_s": count / total})
    return figures


def render(figures: list[dict], device: torch.device) -> str:
    lines = [f"judges (random weights at the public sizes), fp32, {device}, {torch.get_num_threads()} thread(s)", "",
             "| reader | images | seconds | CPU seconds | images/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {f['name']} | {f['images']:,} | {f['seconds']:.1f} | {f['cpu_seconds']:.1f} | {f['images_per_s']:.1f} |"
              for f in figures]
    return "\n".join(lines)
