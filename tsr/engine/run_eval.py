"""Wiring behind `tsr eval`, eval/evaluate.py and the demo: load checkpoints and test splits, run the one
evaluator, print and write the tables (rank 0)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional, Sequence

from tsr import dist
from tsr.config import build_config, load_config, save_config
from tsr.data.lmdb_dataset import dataset_options, load_test_splits
from tsr.engine.evaluator import bicubic_row, evaluate, hr_row, model_row
from tsr.engine.pictures import SampleKeeper
from tsr.io import atomic_write
from tsr.errors import DataError, TsrError
from tsr.metrics.tables import render_all, write_tables

log = logging.getLogger("tsr.eval")


def run_eval(data_root: str, ckpts: Sequence[tuple[str, str]] = (), recognizer_path: Optional[str] = None,
             config_path: Optional[str] = None, overrides: Sequence[str] = (), splits: Optional[Sequence[str]] = None,
             out_dir: Optional[str] = "eval/results", batch_size: Optional[int] = None,
             num_workers: Optional[int] = None, device: str = "cpu", num_images: int = 8):
    """Rows: bicubic, one per checkpoint (label), HR. Returns the evaluator's rows; writes results.* and
    pictures_<split>.png (LR | bicubic | each checkpoint | HR for the first `num_images` samples) to out_dir.

    Who reads the text: with `recognizer_path`, that recognizer reads every row's images (TextZoom's protocol: one
    fixed CRNN judges all SR models). Without it, a checkpoint that has a recognizer reads its own SR output (a
    feature-level one through its adapter), and the first such recognizer reads the bicubic and HR rows and the
    rows of checkpoints without one."""
    from tsr import api

    models = [(label, *api.load(path, device=device)) for path, label in ckpts]
    cfg = (load_config(config_path, overrides) if config_path or not models
           else build_config(models[0][2], overrides, source=f"config of {ckpts[0][0]}"))
    data = cfg["data"]
    for (path, _), (_, model, model_cfg) in zip(ckpts, models):
        _check_sizes(path, model, model_cfg, data)
    split_names = list(splits or data["test_splits"])
    # one pass: a decoded cache would only add its build time
    datasets = load_test_splits(data_root, split_names, **{**dataset_options(data), "mask": True, "cache": False})
    _report_kept(datasets)
    recognizer = _pick_recognizer(recognizer_path, models, device)
    rows = [bicubic_row()]
    for label, model, model_cfg in models:
        if "sr" in model:
            own = recognizer_path is None and "recognizer" in model
            rows.append(model_row(label, _sr_fn(api, model, model_cfg, own), reads_own_text=own))
    rows.append(hr_row())
    keeper = SampleKeeper(num_images if dist.is_main() and out_dir else 0)
    started = time.perf_counter()
    results = evaluate(rows, datasets, recognizer=recognizer,
                       batch_size=batch_size or cfg["eval"]["batch_size"],
                       num_workers=data["num_workers"] if num_workers is None else num_workers, device=device,
                       on_batch=keeper)
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
    """Say how many labels each split leaves out and why; a split with nothing left is an error, not a table of '-'."""
    for split, dataset in datasets.items():
        if len(dataset) == 0:
            raise DataError(f"test split '{split}' has nothing to evaluate: {dataset.kept_summary()}")
        if sum(dataset.dropped.values()) and dist.is_main():
            print(f"{split}: {dataset.kept_summary()}")


def _sr_fn(api, model, model_cfg, reads_own_text: bool):
    """lr -> SR images, or with `reads_own_text` lr -> (SR images, the words the model's recognizer reads)."""
    # test data always carries the mask channel; a model trained without it takes RGB only
    channels = 4 if model_cfg["data"]["mask"] else 3
    if reads_own_text:
        return lambda lr: api.super_resolve_and_read(model, lr[:, :channels], model_cfg)
    return lambda lr: api.super_resolve(model, lr[:, :channels])


def _pick_recognizer(recognizer_path, models, device):
    from tsr import api

    if recognizer_path:
        model, cfg = api.load(recognizer_path, device=device)
        if "recognizer" not in model:
            raise TsrError(f"--recognizer {recognizer_path} holds no recognizer (parts: {sorted(model.keys())})")
        return lambda images: api.recognize(model, images, cfg)
    for label, model, cfg in models:
        if "recognizer" in model:
            log.info("checkpoints with a recognizer read their own output; bicubic, HR and the others are read by "
                     "the recognizer of '%s'", label)
            return lambda images, model=model, cfg=cfg: api.recognize(model, images, cfg)
    log.warning("no recognizer given or found in the checkpoints: ACC columns will read '-'")
    return None
