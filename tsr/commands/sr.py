"""`tsr sr`: super-resolve users' own word images with a checkpoint; PNGs out, plus predictions.tsv when the
checkpoint has a recognizer."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

PREDICTIONS = "predictions.tsv"
HELP = "super-resolve your own word images (a file or a folder of them) with a checkpoint"


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--ckpt", required=True, help="checkpoint with sr + head parts (tsr or TextZoom TSRN)")
    parser.add_argument("--input", required=True, help="an image file, or a folder of images (any PIL format)")
    parser.add_argument("--out", required=True, help="folder for the SR PNGs (and predictions.tsv); never the "
                                                     "--input folder: inputs are never overwritten. The outputs "
                                                     "appear there together when the last image is done")
    options.add_overwrite(parser, "replace files in --out that have this run's output names (its PNGs, "
                                  "predictions.tsv); a predictions.tsv there is removed when --ckpt has no recognizer "
                                  "(it would describe other images)")
    options.add_batch_size(parser, 32, "images per forward")
    options.add_device(parser)


def list_images(path: str | Path, flag: str = "--input") -> list[Path]:
    """A file -> [it]; a folder -> its files with an image extension PIL knows, sorted by name (not recursive)."""
    from PIL import Image

    from tsr.errors import DataError

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{flag} {path} does not exist (expected an image file or a folder of images)")
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise DataError(f"{flag} {path} holds no image files (looked for {', '.join(sorted(extensions)[:8])}, ...)")
    return files


def check_readable(files: list[Path], flag: str = "--input") -> None:
    """DataError naming the first of `files` PIL cannot read. Every input is decoded once before any work, so that
    a damaged file late in a folder stops the run before anything is computed or written."""
    from tsr.data.user_images import open_rgb

    for file in files:
        open_rgb(file, flag)


def read_lr(file: Path, lr_size: tuple[int, int], mask: bool):
    """Image file -> LR tensor [C, h, w] prepared as the dataset prepares LR images (bicubic, [0,1], mask)."""
    from tsr.data.transforms import to_tensor
    from tsr.data.user_images import open_rgb

    return to_tensor(open_rgb(file, "--input"), lr_size, mask)


def output_names(files: list[Path]) -> list[str]:
    """One PNG name per input, all different: 'a.jpg' -> 'a.png', or, when another input would get that name too,
    its full name 'a.jpg.png'. Applied until no two names clash: inputs a.jpg, a.png and a.jpg.png give a.jpg.png,
    a.png.png and a.jpg.png.png (checking stems alone gave a.jpg.png twice, one image written over the other).
    Names clash regardless of case ('A.jpg', 'a.png'), as they would on a case-insensitive file system; full names
    never clash, since the inputs are files of one folder."""
    full = [False] * len(files)
    while True:
        names = [f"{f.name if whole else f.stem}.png" for f, whole in zip(files, full)]
        counts = Counter(name.casefold() for name in names)
        clashing = [i for i, name in enumerate(names) if counts[name.casefold()] > 1 and not full[i]]
        if not clashing:
            return names
        for i in clashing:
            full[i] = True


def check_inputs_kept(input_path: str | Path, files: list[Path], out: Path, names: list[str]) -> None:
    """TsrError when writing `names` into `out` would overwrite an input image, or mix outputs into the --input
    folder (a second run would read them as inputs)."""
    from tsr.errors import TsrError

    if Path(input_path).is_dir() and out.resolve() == Path(input_path).resolve():
        raise TsrError(f"--out {out} is the --input folder; SR images would be written among (and over) your images. "
                       "Choose another --out folder")
    inputs = {f.resolve() for f in files}
    clashes = [name for name in [*names, PREDICTIONS] if (out / name).resolve() in inputs]
    if clashes:
        raise TsrError(f"--out {out}: writing {', '.join(clashes[:3])} would overwrite the input image(s) of the same "
                       "name; choose another --out folder")


def predictions_tsv(rows) -> str:
    """[(file name, text)] -> 'file<TAB>text' lines under that header; a name holding a tab, newline or quote is
    quoted (csv's excel-tab dialect: csv.reader(f, delimiter='\\t') reads the names back exactly)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["file", "text"])
    writer.writerows(rows)
    return buffer.getvalue()


def write_predictions(path: str | Path, rows) -> Path:
    """predictions.tsv of `tsr sr` and `tsr read`: UTF-8, each file name as the bytes it has on disk. A name that
    is not UTF-8 (Latin-1 'caf\\xe9.png') comes from the file system as a str with surrogates, which strict UTF-8
    cannot encode (a traceback after all the work); surrogateescape writes its original bytes back."""
    from tsr.io import atomic_write_bytes

    return atomic_write_bytes(path, predictions_tsv(rows).encode("utf-8", "surrogateescape"))


def png_bytes(image) -> bytes:
    """[C, H, W] in [0,1] -> PNG bytes of its RGB channels (a mask channel is dropped)."""
    import numpy as np
    from PIL import Image

    array = (image[:3].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def run(args):
    import os
    import shutil

    import torch

    from tsr import api, dist
    from tsr.errors import TsrError
    from tsr.io import atomic_write_bytes, make_temp_dir
    from tsr.outputs import check_output_dir, check_replaced

    if args.batch_size < 1:
        raise TsrError(f"--batch-size must be >= 1, got {args.batch_size}")
    files = list_images(args.input)
    out = check_output_dir(args.out, "--out")
    names = output_names(files)
    check_inputs_kept(args.input, files, out, names)
    model, cfg = api.load(args.ckpt, device=dist.init(args.device))
    if "sr" not in model or "head" not in model:
        raise TsrError(f"--ckpt {args.ckpt} has no SR network (parts: {list(model.keys())}); expected sr + head")
    recognizes = "recognizer" in model
    # predictions.tsv counts even when this checkpoint writes none: an earlier run's, left beside the new images,
    # would describe other ones
    replaced = check_replaced(out, [*names, PREDICTIONS], "--out", args.overwrite)
    check_readable(files)
    data = cfg["data"]
    lr_size = (data["lr_height"], data["lr_width"])
    made_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # Everything is written into a hidden folder in --out first and moved into place at the end: a run that fails
    # or is stopped leaves no outputs that look like a finished run's (a killed one leaves only that folder)
    staging = make_temp_dir(out, prefix=".tsr-sr.", suffix=".partial")
    try:
        predictions = []
        for start in range(0, len(files), args.batch_size):
            batch_files = files[start:start + args.batch_size]
            lr = torch.stack([read_lr(f, lr_size, data["mask"]) for f in batch_files])
            sr = api.super_resolve(model, lr)
            for image, name in zip(sr, names[start:start + args.batch_size]):
                atomic_write_bytes(staging / name, png_bytes(image))
            if recognizes:
                predictions += zip((f.name for f in batch_files), api.recognize(model, sr, cfg))
        if recognizes:
            write_predictions(staging / PREDICTIONS, predictions)
        # the old predictions.tsv goes first and the new one comes last: never one beside images it does not describe
        if PREDICTIONS in replaced:
            os.unlink(out / PREDICTIONS)
        for name in [*names, PREDICTIONS] if recognizes else names:
            os.replace(staging / name, out / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if made_out and not any(out.iterdir()):
            out.rmdir()
        raise
    staging.rmdir()
    over = len(set(replaced) & set(names))
    print(f"{len(files)} SR images ({sr.shape[-2]}x{sr.shape[-1]}) written to {out}"
          + (f" ({over} in place of files of their names)" if over else ""))
    if recognizes:
        print(f"predictions: {out / PREDICTIONS}")
    elif PREDICTIONS in replaced:
        print(f"removed {out / PREDICTIONS} of an earlier run (--ckpt has no recognizer)")
    return 0
