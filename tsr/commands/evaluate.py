"""`tsr eval`: ACC (per judge) / PSNR / SSIM tables per test split for checkpoints, plus bicubic and HR rows."""
from __future__ import annotations

from pathlib import Path

HELP = "evaluate checkpoints (and the bicubic / HR baselines) on easy/medium/hard; print and write the tables"


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="test root holding one TextZoom LMDB per split (e.g. data/synth/test)")
    parser.add_argument("--ckpt", nargs="+", action="extend", default=[], metavar="PATH[:LABEL]",
                        help="checkpoints to evaluate, one row each (label defaults to the file name); "
                             "--ckpt A B and --ckpt A --ckpt B are the same")
    parser.add_argument("--recognizer", action="append", default=[], metavar="KIND:PATH",
                        help="a judge that reads every row: crnn:PATH, aster:PATH, moran:PATH or a tsr checkpoint with "
                             "a recognizer; repeat it for several (one ACC table each plus the combined table papers "
                             "print). Default: each checkpoint with a recognizer reads its own output, the first one "
                             "also the bicubic/HR rows; with none, ACC reads '-'")
    parser.add_argument("--config", help="config for data settings (label filter, sizes, mask); default: the "
                                         "first checkpoint's, else tsr's defaults")
    parser.add_argument("--splits", nargs="+", default=None, help="split folder names (default: data.test_splits)")
    parser.add_argument("--out", default="eval/results", help="folder for results.md/.csv/.json/.tex")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: cuda:LOCAL_RANK when CUDA is available, else cpu")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.max_len=20")


def parse_ckpt_arg(text: str) -> tuple[str, str]:
    """'runs/a/best.pth:tsrn' -> ('runs/a/best.pth', 'tsrn'); without ':LABEL' the label is the file stem."""
    path, label = text, ""
    if ":" in Path(text).name:  # a ':' in the file name part, not in a folder (or drive) before it
        path, label = text.rsplit(":", 1)
    return path, label or Path(path).stem


def run(args):
    from tsr import dist
    from tsr.engine.run_eval import run_eval
    from tsr.outputs import check_output_dir

    ckpts = [parse_ckpt_arg(c) for c in args.ckpt]
    if dist.is_main():
        check_output_dir(args.out, "--out")      # before the evaluation, not after it
    # under torchrun: each rank evaluates an unpadded share, sums are all-reduced (exact counts); rank 0 writes
    with dist.session(args.device) as device:
        result = run_eval(data_root=args.data, ckpts=ckpts, recognizers=args.recognizer, config_path=args.config,
                          overrides=args.overrides, splits=args.splits, out_dir=args.out,
                          batch_size=args.batch_size, num_workers=args.workers, device=device)
    return 0 if result is not None else 1
