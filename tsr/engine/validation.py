"""Validation during training: the one evaluator on the test splits (exact counts across ranks), the rows
bicubic | model | HR, the model's A-ACC / A-PSNR for the best checkpoints, and picture grids for TensorBoard."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch.utils.data import Dataset, Subset

from tsr import api, dist
from tsr.checkpoint import unwrap
from tsr.engine.evaluator import bicubic_row, evaluate, hr_row, model_row
from tsr.engine.pictures import picture_grid
from tsr.metrics.tables import AVERAGE, with_average

MODEL_ROW = "model"


class Validator:
    def __init__(self, cfg: dict, splits: Mapping[str, Dataset], device: torch.device):
        limit = cfg["train"]["val_limit"]
        self.splits = {name: Subset(ds, range(min(limit, len(ds)))) if limit is not None else ds
                       for name, ds in splits.items()}
        self.cfg, self.device = cfg, device
        self.num_images = cfg["train"]["num_images"]
        self._judge: Optional[tuple] = None     # (model, config) of eval.recognizer, loaded once

    def _recognizer(self, model):
        """The model's own recognizer, else the one of eval.recognizer (e.g. a CRNN judging the sr stage)."""
        if "recognizer" in model:
            return lambda images: api.recognize(model, images, self.cfg)
        path = self.cfg["eval"]["recognizer"]
        if path is None:
            return None
        if self._judge is None:
            self._judge = api.load(path, device=self.device)
        judge, judge_cfg = self._judge
        return lambda images: api.recognize(judge, images, judge_cfg)

    def run(self, model) -> tuple[list, dict, dict]:
        """-> (evaluator rows, {"acc": A-ACC, "psnr": A-PSNR} of the model (HR row's ACC for a recognizer
        alone; None where not measured), {split: picture grid} (rank 0's first samples))."""
        model = unwrap(model)
        rows = [bicubic_row()]
        if "sr" in model:
            if api.reads_features(model):
                rows.append(model_row(MODEL_ROW, lambda lr: api.super_resolve_and_read(model, lr, self.cfg), True))
            else:
                rows.append(model_row(MODEL_ROW, lambda lr: api.super_resolve(model, lr)))
        rows.append(hr_row())
        samples: dict[str, dict] = {}

        def keep(split, batch, images_by_row, words_by_row):
            if not dist.is_main() or split in samples or not self.num_images:
                return
            n = min(self.num_images, len(batch["label"]))
            samples[split] = {"lr": batch["lr"][:n], "labels": batch["label"][:n],
                              "images": {k: v[:n].cpu() for k, v in images_by_row.items()},
                              "words": {k: (w[:n] if w is not None else None) for k, w in words_by_row.items()}}

        results = evaluate(rows, self.splits, recognizer=self._recognizer(model),
                           batch_size=self.cfg["eval"]["batch_size"], num_workers=self.cfg["data"]["num_workers"],
                           device=self.device, on_batch=keep)
        scored = dict(results)[MODEL_ROW if "sr" in model else "HR"]
        average = with_average(MODEL_ROW, scored, list(self.splits))[AVERAGE]
        pictures = {split: _grid(s) for split, s in samples.items()}
        return results, {"acc": average["acc"], "psnr": average["psnr"]}, pictures


def _grid(sample: dict):
    columns = [("LR", sample["lr"])] + [(name if name != MODEL_ROW else "SR", images)
                                        for name, images in sample["images"].items()]
    words = {(name if name != MODEL_ROW else "SR"): w for name, w in sample["words"].items()}
    return picture_grid(columns, sample["labels"], words)
