"""TSRN training throughput in TextZoom's original layout (tsr/perf/reference_tsrn.py, fp32, STN + mask) next
to tsr's TSRN in fp32 eager and on the fast path, at equal batch: the baseline of README's Performance section.

    python eval/bench_reference_tsrn.py [--batch-size 32] [--steps 5]
"""
import argparse

import torch

from tsr.commands.options import add_batch_size
from tsr.engine import fast_path
from tsr.engine.timing import timed
from tsr.losses import SRLoss
from tsr.models.heads import PixelShuffleHead
from tsr.models.tsrn import TSRNBackbone
from tsr.perf import reference_tsrn as reference


def images_per_s(kind: str, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    fast = kind == "tsr fast path"
    lr, hr = torch.rand(batch, 4, 16, 64), torch.rand(batch, 4, 32, 128)
    if kind == "TextZoom layout":
        model = reference.RefTSRN()
        forward = model
    else:
        sr, head = TSRNBackbone(4, 64, 5, stn=True), PixelShuffleHead(64, 4, 1)
        model = torch.nn.ModuleDict({"sr": sr, "head": head})
        forward = lambda x: head(sr(x), x)  # noqa: E731
    fast_path.to_device(model.train(), cpu, channels_last=fast)
    lr = fast_path.input_to_device(lr, cpu, channels_last=fast)
    amp = fast_path.autocast_dtype("auto", cpu) if fast else None
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, betas=(0.5, 0.999))
    loss_fn = SRLoss()

    def step():
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            out = forward(lr)
        loss = loss_fn(out.float(), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return batch / timed(step, steps, cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batch_size(parser, 32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rates = {k: images_per_s(k, args.batch_size, args.steps)
             for k in ("TextZoom layout", "tsr fp32 eager", "tsr fast path")}
    print(f"| TSRN training, batch {args.batch_size}, CPU | images/s | vs TextZoom layout |\n|---|---:|---:|")
    for kind, rate in rates.items():
        print(f"| {kind} | {rate:.1f} | {rate / rates['TextZoom layout']:.2f}x |")


if __name__ == "__main__":
    main()
