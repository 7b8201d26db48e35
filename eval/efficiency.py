"""The efficiency table: cost (params, FLOPs, activations, CPU latency per crop at batch 1 / 64, peak memory) and
quality (A-PSNR, A-SSIM, E/M/H/A-ACC) per SR checkpoint; launch/efficiency.sh trains the rows and calls this.

    python eval/efficiency.py --data data/synth/test --recognizer R.pth --out eval/results/efficiency \
        --ckpt checkpoints/demo/abpn/best_psnr_model.pth:abpn ...
"""
import argparse
import sys

from tsr.cli import exit_process
from tsr.commands.evaluate import parse_ckpt_arg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="test root (one LMDB per split)")
    parser.add_argument("--ckpt", nargs="+", required=True, metavar="PATH[:LABEL]")
    parser.add_argument("--recognizer", help="checkpoint whose recognizer reads every row (ACC)")
    parser.add_argument("--out", default="eval/results/efficiency")
    parser.add_argument("--repeats", type=int, default=10, help="timed forwards per latency figure")
    args = parser.parse_args()
    from tsr.errors import TsrError
    from tsr.perf import efficiency

    try:
        rows = efficiency.efficiency_rows([parse_ckpt_arg(c) for c in args.ckpt], args.data, args.recognizer,
                                          args.out, args.repeats)
    except TsrError as e:
        print(f"eval/efficiency.py: error: {e}", file=sys.stderr)
        return 2
    print(efficiency.render(rows))
    print("written: " + ", ".join(map(str, efficiency.write(rows, args.out))))
    return 0


if __name__ == "__main__":
    exit_process(main())
