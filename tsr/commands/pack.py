"""`tsr pack`: your own word images -> a TextZoom-format LMDB (tsr.data.pack)."""

HELP = "pack your own word images (paired LR/HR folders, or HR alone degraded by tsr) into TextZoom-format LMDBs"


def add_arguments(parser):
    parser.add_argument("--hr", required=True, help="folder of HR word images")
    parser.add_argument("--lr", help="folder of LR images paired with --hr by file stem (None: made from HR with "
                                     "tsr's degradations, see --degrade)")
    parser.add_argument("--labels", help="tsv 'file<TAB>label' (None: the label is the file stem after its last '_')")
    parser.add_argument("--out", required=True, help="LMDB folder to write (with --test-fraction: OUT/train and "
                                                     "OUT/test/all, a train root and a test root)")
    parser.add_argument("--degrade", default="mixed", choices=["easy", "medium", "hard", "mixed"],
                        help="strength of the degradation that makes LR from HR (without --lr)")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="share of the pairs (seeded draw) written to the test split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test draw and of the degradations")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the LMDB(s) an earlier pack wrote at --out (only LMDB folders are replaced)")


def run(args):
    from tsr.data.pack import pack

    counts = pack(args.hr, args.out, lr_dir=args.lr, labels_path=args.labels, level=args.degrade,
                  test_fraction=args.test_fraction, seed=args.seed, overwrite=args.overwrite)
    for path, count in counts.items():
        print(f"{path}: {count} records")
    if len(counts) > 1:
        print(f"train with 'data.train_roots=[{args.out}/train]' data.test_root={args.out}/test "
              f"'data.test_splits=[all]'")
    return 0
