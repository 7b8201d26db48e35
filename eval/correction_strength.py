"""How legible an SR model's images are as its correction of bicubic grows: rows bicubic + a * (SR - bicubic).

For a model whose head adds the bicubic upscaling of LR (`model.head.bicubic_skip`, the demo's TSRN), a = 0 is
that bicubic image and a = 1 the model's own output (its `tsr eval` row, digit for digit); between them, the
correction scaled by a, in image space (as ESRGAN's image interpolation; network interpolation would need two
trained models). The rows go through tsr's one evaluator with the judges given, so ACC, PSNR and SSIM are those of
`tsr eval` (the bicubic row is the protocol's). An analysis, not a method: a is not chosen on held-out data here.

    python eval/correction_strength.py --data data/synth/test --ckpt checkpoints/demo/sr/best_psnr_model.pth \
        --recognizer convctc:checkpoints/demo/reader/best_acc_model.pth --out eval/results/strength
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from tsr import inference
from tsr.cli import exit_process
from tsr.data.lmdb_dataset import dataset_options, load_test_splits
from tsr.engine.evaluator import bicubic_row, evaluate, hr_row, model_row
from tsr.images import image_channels
from tsr.judges import load_judges
from tsr.metrics.paper_tables import render_all, write_tables


class Corrections:
    """Rows bicubic + a * (SR - bicubic) of one model. The evaluator hands every row of a batch the same LR tensor,
    so the SR images and the head's bicubic are made once per batch and shared by all strengths' rows."""

    def __init__(self, model, cfg: dict):
        self.model, self.channels = model, image_channels(cfg["data"]["mask"])
        self._lr = self._images = None

    def _bicubic_and_sr(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if lr is not self._lr:
            lr_in = lr[:, :self.channels]
            sr = inference.super_resolve(self.model, lr_in)
            # the head's own skip: unclamped, align_corners=False (not the protocols' bicubic rows)
            base = F.interpolate(lr_in.to(sr), size=sr.shape[-2:], mode="bicubic", align_corners=False)
            self._lr, self._images = lr, (base, sr)
        return self._images

    def row(self, strength: float):
        """lr -> bicubic + strength * (SR - bicubic), clamped to [0,1] as the model's own SR images are."""
        def images(lr: torch.Tensor) -> torch.Tensor:
            # lerp is exact at both ends: strength 1 gives the model's own images, 0 the head's bicubic
            return torch.lerp(*self._bicubic_and_sr(lr), strength).clamp(0, 1)
        return images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="test root with one TextZoom LMDB per split")
    parser.add_argument("--ckpt", required=True, help="an SR checkpoint whose head has bicubic_skip")
    parser.add_argument("--recognizer", action="append", required=True, help="a judge, KIND:PATH; repeat for more")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--splits", nargs="+", default=None, help="split folders (default: data.test_splits)")
    parser.add_argument("--out", default=None, help="folder for results.md/.csv/.json/.tex")
    args = parser.parse_args(argv)
    model, cfg = inference.load(args.ckpt)
    if not cfg["model"]["head"].get("bicubic_skip"):
        parser.error(f"--ckpt {args.ckpt}: its head has no bicubic skip (model.head.bicubic_skip), so its output "
                     "is no correction of bicubic; expected a model like configs/demo/sr.yaml's")
    splits = load_test_splits(args.data, args.splits or cfg["data"]["test_splits"],
                              **{**dataset_options(cfg["data"]), "mask": True, "cache": False})
    judges = {judge.name: judge.read for judge in load_judges(args.recognizer)}
    corrections = Corrections(model, cfg)
    rows = [bicubic_row(), *(model_row(f"bicubic + {a:g} x correction", corrections.row(a)) for a in args.strengths),
            hr_row()]
    results = evaluate(rows, splits, judges=judges, batch_size=cfg["eval"]["batch_size"], num_workers=0,
                       protocol=cfg["eval"]["protocol"])
    print(render_all(results, list(splits)))
    if args.out:
        print("written: " + ", ".join(str(p) for p in write_tables(results, list(splits), args.out)))
    return 0


if __name__ == "__main__":
    exit_process(main())
