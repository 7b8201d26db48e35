"""Calibrate `tsr synth`'s degradation strengths: train a CRNN on the synthetic HR images, then read the test
splits' HR images and bicubic-upscaled LR images with it. Calibrated means: accuracy on bicubic LR is clearly
below HR at each level, easy > medium > hard, hard well below HR.

    python eval/calibrate_synth.py --data data/synth --steps 1500 --out eval/results/calibration

(The trainer of `tsr train` does this properly; this is a small fixed loop so the data can be checked alone.)
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tsr.data.charset import CTCCodec, alphabet_for
from tsr.data.lmdb_dataset import build_train_dataset, collate, load_test_splits
from tsr.engine.evaluator import bicubic_row, evaluate, hr_row
from tsr.metrics.tables import render_all, write_tables
from tsr.models.crnn import CRNN, CRNN_PYTORCH_CHANNELS


def train_recognizer(train_root: str, steps: int, batch_size: int, lr: float, seed: int, width: float) -> CRNN:
    torch.manual_seed(seed)
    codec = CTCCodec(alphabet_for("lower"))
    model = CRNN(num_classes=codec.num_classes, hidden=int(256 * width),
                 cnn_channels=[int(c * width) for c in CRNN_PYTORCH_CHANNELS])
    data = build_train_dataset([train_root], mask=False)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=1, collate_fn=collate, drop_last=True,
                        generator=torch.Generator().manual_seed(seed), persistent_workers=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    step, start = 0, time.time()
    while step < steps:
        for batch in loader:
            targets, lengths = codec.encode(batch["label"])
            log_probs = model(batch["hr"]).log_softmax(2)
            input_lengths = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
            loss = F.ctc_loss(log_probs, targets, input_lengths, lengths, zero_infinity=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            step += 1
            if step % 100 == 0 or step == steps:
                print(f"step {step}/{steps} ctc {loss.item():.3f} {step * batch_size / (time.time() - start):.0f} img/s",
                      flush=True)
            if step == steps:
                break
    return model.eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/synth", help="output folder of tsr synth")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, default=0.25, help="CRNN channel multiplier (1 = crnn.pytorch; "
                                                                   "0.25 trains ~10x faster on CPU)")
    parser.add_argument("--out", default="eval/results/calibration")
    args = parser.parse_args(argv)
    model = train_recognizer(f"{args.data}/train", args.steps, args.batch_size, args.lr, args.seed, args.width)
    codec = CTCCodec(alphabet_for("lower"))
    splits = load_test_splits(f"{args.data}/test", mask=False)
    results = evaluate([bicubic_row(), hr_row()], splits, recognizer=lambda images: model.recognize(images, codec))
    print(render_all(results, list(splits)))
    write_tables(results, list(splits), args.out)


if __name__ == "__main__":
    main()
