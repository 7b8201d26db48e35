"""`tsr read`: read word images with one judge (CRNN, ASTER, MORAN or a tsr checkpoint's recognizer) ->
DIR/predictions.tsv."""
from __future__ import annotations

HELP = "read word images (a file or a folder) with a recognizer: crnn|aster|moran:PATH or a tsr checkpoint"


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--recognizer", required=True, metavar="KIND:PATH",
                        help="crnn:crnn.pth, aster:demo.pth.tar, moran:moran.pth, or a tsr checkpoint with a recognizer")
    parser.add_argument("--input", required=True, help="an image file, or a folder of images (any PIL format, any size)")
    parser.add_argument("--out", required=True, help="folder for predictions.tsv")
    options.add_overwrite(parser, "replace a predictions.tsv already in --out")
    options.add_batch_size(parser, 64, "images per batch")
    options.add_device(parser, "cpu")


def run(args):
    import time

    import torch

    from tsr import dist
    from tsr.commands.sr import PREDICTIONS, check_readable, list_images, read_lr, write_predictions
    from tsr.errors import TsrError
    from tsr.judges import load_judge
    from tsr.outputs import check_output_dir, check_replaced

    if args.batch_size < 1:
        raise TsrError(f"--batch-size must be >= 1, got {args.batch_size}")
    files = list_images(args.input)
    out = check_output_dir(args.out, "--out")
    judge = load_judge(args.recognizer, device=dist.init(args.device))
    check_replaced(out, [PREDICTIONS], "--out", args.overwrite)
    check_readable(files)
    started = time.perf_counter()
    rows = []
    for start in range(0, len(files), args.batch_size):
        batch = files[start:start + args.batch_size]
        # every image is resized (PIL bicubic, as the dataset prepares HR images) to the HR size first
        images = torch.stack([read_lr(f, judge.hr_size, mask=False) for f in batch])
        rows += zip((f.name for f in batch), judge.read(images))
    seconds = time.perf_counter() - started
    path = write_predictions(out / PREDICTIONS, rows)
    empty = sum(1 for _, text in rows if not text)
    print(f"read {len(rows)} image(s) with {judge.name} ({args.recognizer}) at {judge.hr_size[0]}x{judge.hr_size[1]} "
          f"in {seconds:.1f} s ({len(rows) / max(seconds, 1e-9):.1f} images/s); {empty} read as empty")
    print(f"written: {path}")
    return 0
