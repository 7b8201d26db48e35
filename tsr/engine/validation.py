"""Validation during training: the one evaluator on the test splits (exact counts across ranks), the rows
bicubic | model | HR, the model's A-ACC / A-PSNR for the best checkpoints, and picture grids for TensorBoard."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch.utils.data import Dataset

from tsr import dist, inference
from tsr.checkpoint import unwrap
from tsr.data.lmdb_dataset import first_records
from tsr.engine.evaluator import evaluate
from tsr.engine.pictures import SampleKeeper
from tsr.engine.rows import evaluation_rows
from tsr.judges import Judge, load_judge
from tsr.metrics.tables import AVERAGE, with_average

MODEL_ROW = "model"


class Validator:
    def __init__(self, cfg: dict, splits: Mapping[str, Dataset], device: torch.device):
        self.splits = first_records(splits, cfg["train"]["val_limit"])
        self.cfg, self.device = cfg, device
        self.num_images = cfg["train"]["num_images"]
        self._judge: Optional[Judge] = None     # eval.recognizer, loaded once

    def _judged(self, model) -> bool:
        """eval.recognizer reads a model with an SR output even when the model has a recognizer of its own: the
        fixed judge of TextZoom's protocol, the same for every stage, then picks best_acc_model.pth (a new adapter's
        own reading says little early on). A recognizer alone is always scored by its own reading of HR."""
        return self.cfg["eval"]["recognizer"] is not None and "sr" in model

    def reader(self, model) -> str:
        """Who reads the rows' text in validation, for the log."""
        model = unwrap(model)
        if self._judged(model):
            return f"read by eval.recognizer={self.cfg['eval']['recognizer']}"
        return "read by the model's own recognizer" if "recognizer" in model else "nobody reads the text"

    def _recognizer(self, model):
        """The judge of eval.recognizer (see _judged), else the model's own recognizer, else None (nobody reads)."""
        if self._judged(model):
            if self._judge is None:   # KIND:PATH (crnn / aster / moran) or a checkpoint with a recognizer
                self._judge = load_judge(self.cfg["eval"]["recognizer"], device=self.device)
            return self._judge.read
        if "recognizer" in model:
            return lambda images: inference.recognize(model, images, self.cfg)
        return None

    @staticmethod
    def scored_row(model) -> str:
        """The row whose A-ACC / A-PSNR choose the best checkpoints: the model's SR output, or for a recognizer
        alone the HR row (its accuracy on HR images)."""
        return MODEL_ROW if "sr" in unwrap(model) else "HR"

    def run(self, model) -> tuple[list, dict, dict]:
        """-> (evaluator rows, {"acc": A-ACC, "psnr": A-PSNR, "ssim": A-SSIM} of the model (HR row's ACC for a recognizer
        alone; None where not measured), {split: picture grid} (rank 0's first samples))."""
        model = unwrap(model)
        rows = evaluation_rows([(MODEL_ROW, model, self.cfg)], own_text=not self._judged(model))
        keeper = SampleKeeper(self.num_images if dist.is_main() else 0, titles={MODEL_ROW: "SR"})
        # read in this process, not by loader workers: forking one while the training loader's threads run can
        # leave the child on a lock copied held (seen once: a recognizer stage's rank hung at its last validation)
        results = evaluate(rows, self.splits, recognizer=self._recognizer(model),
                           batch_size=self.cfg["eval"]["batch_size"], num_workers=0,
                           device=self.device, on_batch=keeper, protocol=self.cfg["eval"]["protocol"])
        scored = dict(results)[self.scored_row(model)]
        average = with_average(MODEL_ROW, scored, list(self.splits))[AVERAGE]
        # ssim is reported (TensorBoard val/A/ssim), never used to pick a best checkpoint
        return results, {"acc": average["acc"], "psnr": average["psnr"], "ssim": average.get("ssim")}, keeper.grids()
