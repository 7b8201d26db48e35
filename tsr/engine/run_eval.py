"""Wiring behind `tsr eval`, eval/evaluate.py and the demo: load checkpoints and test splits, run the one
evaluator, print and write the tables (rank 0)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional, Sequence

from tsr import dist, inference
from tsr.config import build_config, load_config, save_config
from tsr.data.lmdb_dataset import dataset_options, first_records, load_test_splits
from tsr.engine.evaluator import evaluate
from tsr.engine.pictures import FONT_SIZE, SampleKeeper
from tsr.engine.rows import evaluation_rows
from tsr.io import atomic_write
from tsr.errors import TsrError
from tsr.judges import OWN, load_judges
from tsr.metrics.paper_tables import render_all, write_tables

log = logging.getLogger("tsr.eval")


def run_eval(data_root: str, ckpts: Sequence[tuple[str, str]] = (), recognizers: Sequence[str] = (),
             config_path: Optional[str] = None, overrides: Sequence[str] = (), splits: Optional[Sequence[str]] = None,
             out_dir: Optional[str] = "eval/results", batch_size: Optional[int] = None,
             num_workers: Optional[int] = None, device: str = "cpu", num_images: int = 8,
             pictures_seed: Optional[int] = None, font_size: int = FONT_SIZE, limit: Optional[int] = None):
    """Rows: bicubic, one per checkpoint (label), HR. Returns the evaluator's rows; writes results.* and
    pictures_<split>.png (LR | bicubic | each checkpoint | HR for `num_images` samples: the first ones, or drawn by
    `pictures_seed`; text at `font_size`) to out_dir. `limit`: only the first N records of each split.

    Who reads the text: with `recognizers` (judges, KIND:PATH or PATH, see tsr.judges), each of them reads every
    row's images (TextZoom's protocol: fixed CRNN / ASTER / MORAN judge all SR models); one ACC table per judge and
    the combined table papers print. Without them, a checkpoint that has a recognizer reads its own SR output (a
    feature-level one through its adapter), and the first such recognizer reads the bicubic and HR rows and the
    rows of checkpoints without one. The judge `own` (tsr.judges.OWN) is that own reading as a column beside the
    judges': one evaluation gives both, the other rows read '-' there."""
    models = [(label, *inference.load(path, device=device)) for path, label in ckpts]
    cfg = (load_config(config_path, overrides) if config_path or not models
           else build_config(models[0][2], overrides, source=f"config of {ckpts[0][0]}"))
    data = cfg["data"]
    for (path, _), (_, model, model_cfg) in zip(ckpts, models):
        _check_sizes(path, model, model_cfg, data)
    split_names = list(splits or data["test_splits"])
    # one pass: a decoded cache would only add its build time
    datasets = load_test_splits(data_root, split_names, **{**dataset_options(data), "mask": True, "cache": False})
    _report_kept(datasets)
    datasets = first_records(datasets, limit)
    judges = _judges(recognizers, device, models)
    recognizer = None if judges else _pick_recognizer(models)
    rows = evaluation_rows(models, own_text=not judges or OWN in judges)
    batch_size = cfg["eval"]["batch_size"] if batch_size is None else batch_size
    # the samples this rank sees per split: the seeded draw picks among them
    sizes = {name: sum(len(b) for b in dist.shard_batches(len(ds), batch_size)) for name, ds in datasets.items()}
    keeper = SampleKeeper(num_images if dist.is_main() and out_dir else 0, seed=pictures_seed, font_size=font_size,
                          sizes=sizes)
    started = time.perf_counter()
    results = evaluate(rows, datasets, recognizer=recognizer, judges=judges,
                       batch_size=batch_size, device=device,
                       num_workers=data["num_workers"] if num_workers is None else num_workers,
                       on_batch=keeper, protocol=cfg["eval"]["protocol"])
    seconds = time.perf_counter() - started
    if dist.is_main():
        print(render_all(results, split_names))
        records = sum(len(d) for d in datasets.values())
        print(f"evaluated {records} test records x {len(rows)} rows in {seconds:.1f} s on {dist.world_size()} "
              f"process(es), {device}")
        if out_dir:
            paths = write_tables(results, split_names, out_dir)
            save_config(cfg, Path(out_dir) / "config.yaml")  # the data settings these numbers were made with
            paths.append(Path(out_dir) / "config.yaml")
            for split, grid in keeper.grids().items():
                paths.append(atomic_write(Path(out_dir) / f"pictures_{split}.png", lambda f, g=grid: g.save(f, "PNG")))
            print("written: " + ", ".join(str(p) for p in paths))
    return results


def _check_sizes(path: str, model, model_cfg: dict, data: dict) -> None:
    """A checkpoint's SR images must have the size of the evaluation's HR images (and read its LR size)."""
    keys = ("lr_height", "lr_width", "hr_height", "hr_width")
    if "sr" in model and any(model_cfg["data"][k] != data[k] for k in keys):
        own = model_cfg["data"]
        raise TsrError(f"--ckpt {path} turns {own['lr_height']}x{own['lr_width']} LR images into "
                       f"{own['hr_height']}x{own['hr_width']} SR images, but this evaluation reads LR "
                       f"{data['lr_height']}x{data['lr_width']} and HR {data['hr_height']}x{data['hr_width']} "
                       f"(data.lr_* / data.hr_* of --config or the overrides); evaluate it with its own sizes")


def _report_kept(datasets: dict) -> None:
    """Say how many labels each split leaves out and why (a split with nothing left: tsr.data.load_test_splits)."""
    for split, dataset in datasets.items():
        if sum(dataset.dropped.values()) and dist.is_main():
            print(f"{split}: {dataset.kept_summary()}")


def _judges(specs: Sequence[str], device, models) -> Optional[dict]:
    """{table label: reader} in the order given, `own` (the rows' own reading) as None; None without specs."""
    if not specs:
        return None
    if OWN in specs and not any("recognizer" in model for _, model, _ in models):
        raise TsrError(f"--recognizer {OWN}: none of the checkpoints has a recognizer to read its own output")
    loaded = iter(load_judges([spec for spec in specs if spec != OWN], device))
    judges = {}
    for spec in specs:
        if spec == OWN:
            judges[OWN] = None
        else:
            judge = next(loaded)
            judges[judge.name] = judge.read
    return judges


def _pick_recognizer(models):
    for label, model, cfg in models:
        if "recognizer" in model:
            log.info("checkpoints with a recognizer read their own output; bicubic, HR and the others are read by "
                     "the recognizer of '%s'", label)
            return lambda images, model=model, cfg=cfg: inference.recognize(model, images, cfg)
    log.warning("no recognizer given or found in the checkpoints: ACC columns will read '-'")
    return None
