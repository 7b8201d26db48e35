"""`tsr eval`: ACC (per judge) / PSNR / SSIM tables per test split for checkpoints, plus bicubic and HR rows."""
from __future__ import annotations

from pathlib import Path

from tsr.errors import TsrError

HELP = "evaluate checkpoints (and the bicubic / HR baselines) on easy/medium/hard; print and write the tables"


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--data", required=True, help="test root holding one TextZoom LMDB per split (e.g. data/synth/test)")
    parser.add_argument("--ckpt", nargs="+", action="extend", default=[], metavar="PATH[:LABEL]",
                        help="checkpoints to evaluate, one row each (label defaults to the file name, or to the run "
                             "folder's name for best_acc_model / best_psnr_model / last); "
                             "--ckpt A B and --ckpt A --ckpt B are the same")
    parser.add_argument("--recognizer", action="append", default=[], metavar="KIND:PATH",
                        help="a judge that reads every row: crnn:PATH, aster:PATH, moran:PATH or a tsr checkpoint with "
                             "a recognizer; repeat it for several (one ACC table each plus the combined table papers "
                             "print); 'own': each checkpoint's own reading (feature level: through its adapter) as "
                             "one more judge. Default: each checkpoint with a recognizer reads its own output, the "
                             "first one also the bicubic/HR rows; with none, ACC reads '-'")
    parser.add_argument("--config", help="config for data settings (label filter, sizes, mask); default: the "
                                         "first checkpoint's, else tsr's defaults")
    parser.add_argument("--splits", nargs="+", default=None, help="split folder names (default: data.test_splits)")
    parser.add_argument("--out", default="eval/results", help="folder for results.md/.csv/.json/.tex")
    options.add_batch_size(parser, None, "images per batch (None: eval.batch_size of the config, 64; the textzoom "
                                         "protocol's PSNR/SSIM are per batch, so it changes them)")
    parser.add_argument("--limit", type=options.positive_int, default=None, metavar="N",
                        help="only the first N records of each split (quick CPU runs; the tables say how many "
                             "were read; default: all)")
    parser.add_argument("--workers", type=options.non_negative_int, default=None,
                        help="data loading processes (None: data.num_workers; 0: in the main process)")
    options.add_device(parser)
    parser.add_argument("--pictures", type=options.non_negative_int, default=8, metavar="N",
                        help="samples per split in pictures_<split>.png (0: no pictures)")
    parser.add_argument("--pictures-seed", type=int, default=None, metavar="S",
                        help="draw which samples the pictures show with this seed (None: the first N)")
    parser.add_argument("--pictures-font", type=options.positive_int, default=12, metavar="PX",
                        help="text size in the pictures (e.g. 20 for figures in papers)")
    options.add_overrides(parser, "data.max_len=20")


def parse_ckpt_arg(text: str) -> tuple[str, str]:
    """'runs/a/best.pth:tsrn' -> ('runs/a/best.pth', 'tsrn'); without ':LABEL' the label is the file stem, or the
    run folder's name for the file names every run folder has ('runs/a/last.pth' -> 'a')."""
    from tsr.engine.run_folder import file_label

    path, label = text, ""
    if ":" in Path(text).name:  # a ':' in the file name part, not in a folder (or drive) before it
        path, label = text.rsplit(":", 1)
    return path, label or file_label(path)


def unique_labels(ckpts: list[tuple[str, str]]) -> None:
    """Two rows of one label, or a checkpoint labelled as a baseline row, are refused (one line) before any work;
    the evaluator would refuse them only after loading every checkpoint, and in no words of the command line."""
    from tsr.engine.evaluator import bicubic_row, hr_row

    seen = {row.name: f"the {row.name} row" for row in (bicubic_row(), hr_row())}
    for path, label in ckpts:
        if label in seen:
            raise TsrError(f"--ckpt: {seen[label]} and {path} would both be the row '{label}'; give each a label "
                           "of its own as PATH:LABEL")
        seen[label] = path


def run(args):
    from tsr import dist
    from tsr.commands import options
    from tsr.engine.run_eval import run_eval
    from tsr.outputs import check_output_dir

    # `--ckpt A.pth data.max_len=20`: argparse gives the override to --ckpt; the grammar takes it back
    paths, late = options.split_overrides(args.ckpt)
    ckpts = [parse_ckpt_arg(c) for c in paths]
    unique_labels(ckpts)
    if dist.is_main():
        check_output_dir(args.out, "--out")      # before the evaluation, not after it
    # under torchrun: each rank evaluates an unpadded share, sums are all-reduced (exact counts); rank 0 writes
    with dist.session(args.device) as device:
        result = run_eval(data_root=args.data, ckpts=ckpts, recognizers=args.recognizer, config_path=args.config,
                          overrides=[*args.overrides, *late], splits=args.splits, out_dir=args.out,
                          batch_size=args.batch_size, num_workers=args.workers, device=device,
                          num_images=args.pictures, pictures_seed=args.pictures_seed, font_size=args.pictures_font,
                          limit=args.limit)
    return 0 if result is not None else 1
