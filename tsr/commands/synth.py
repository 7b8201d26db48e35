"""`tsr synth`: the synthetic TextZoom-format dataset (see tsr/data/synth.py)."""

HELP = "synthesise a TextZoom-format dataset: OUT/train and OUT/test/{easy,medium,hard} LMDBs"


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--train", type=int, required=True, help="number of training pairs")
    parser.add_argument("--test", type=int, required=True, help="number of test pairs per difficulty split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--fonts", default=None, help="folder of .ttf/.otf fonts (default: system DejaVu etc.)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing LMDBs")
    group.add_argument("--reuse", action="store_true",
                       help="do nothing when OUT already holds data made with the same arguments")


def run(args):
    from tsr.data.synth import matches_manifest, synthesize
    from tsr.errors import TsrError

    for name in ("train", "test"):
        if getattr(args, name) < 0:
            raise TsrError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.reuse and matches_manifest(args.out, args.train, args.test, args.seed, args.fonts):
        print(f"reusing {args.out} (made with the same arguments; see {args.out}/manifest.json)")
        return 0
    manifest = synthesize(args.out, args.train, args.test, seed=args.seed, workers=args.workers,
                          font_dir=args.fonts, overwrite=args.overwrite or args.reuse)
    counts = ", ".join(f"{k}={v}" for k, v in manifest["counts"].items())
    print(f"wrote {args.out}: {counts} in {manifest['seconds']} s with {len(manifest['fonts'])} fonts")
    return 0
