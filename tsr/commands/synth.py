"""`tsr synth`: the synthetic TextZoom-format dataset (see tsr/data/synth.py)."""

HELP = "synthesise a TextZoom-format dataset: OUT/train and OUT/test/{easy,medium,hard} LMDBs"


def _counts(text: str):
    """'300' -> 300, '1619,1411,1343' -> [1619, 1411, 1343]; tsr.data.synth.test_counts decides what is valid."""
    import argparse

    from tsr.data.synth import test_counts
    try:
        parts = [int(part) for part in text.split(",")]
        counts = parts[0] if len(parts) == 1 else parts
        test_counts(counts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 0 or three (easy,medium,hard), got {text!r}") from None
    return counts


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--train", type=options.non_negative_int, required=True, help="number of training pairs")
    parser.add_argument("--test", type=_counts, required=True, metavar="N|E,M,H",
                        help="test pairs per difficulty split: one number, or easy,medium,hard "
                             "(TextZoom's sizes: 1619,1411,1343)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed and arguments: same bytes)")
    parser.add_argument("--workers", type=options.positive_int, default=None, help="processes (None: all cores)")
    parser.add_argument("--fonts", default=None, help="folder of .ttf/.otf fonts (None: system DejaVu etc.)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing LMDBs")
    group.add_argument("--reuse", action="store_true",
                       help="do nothing when OUT already holds data made with the same arguments")


def run(args):
    from tsr.data.synth import matches_manifest, synthesize
    from tsr.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    if args.reuse and matches_manifest(args.out, args.train, args.test, args.seed, args.fonts):
        print(f"reusing {args.out} (made with the same arguments; see {args.out}/manifest.json)")
        return 0
    manifest = synthesize(args.out, args.train, args.test, seed=args.seed, workers=args.workers,
                          font_dir=args.fonts, overwrite=args.overwrite or args.reuse)
    counts = ", ".join(f"{k}={v}" for k, v in manifest["counts"].items())
    print(f"wrote {args.out}: {counts} in {manifest['seconds']} s with {len(manifest['fonts'])} fonts")
    return 0
