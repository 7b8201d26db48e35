"""`tsr bench`: fast path vs plain fp32 eager, training / evaluation / data loading images/s, peak memory; with
--judges, how fast CRNN, ASTER and MORAN read a test set."""

HELP = "benchmark: training images/s per stage, evaluation and data loading, fast path vs fp32 eager"

EVAL_CONFIG = "configs/joint_image.yaml"
DEFAULT_STAGES = ["configs/sr.yaml", "configs/recognizer.yaml", "configs/joint_image.yaml", "configs/joint_feature.yaml"]


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--config", nargs="+", default=None, metavar="CFG",
                        help="stage configs whose training step is timed (default: the four stages in configs/; "
                             "none with --int8)")
    parser.add_argument("--int8", metavar="Q.pth", help="an int8 checkpoint (tsr quantize): time its SR inference "
                                                        "on CPU against the same network in fp32, batch 1 and 64")
    options.add_device(parser)
    options.add_batch_size(parser, 32, "training batch")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed training steps per stage and mode (SR forwards per batch size with --int8)")
    parser.add_argument("--data", default="data/synth", help="folder with train/ and test/ LMDBs for the "
                                                             "evaluation and loading figures ('' skips them)")
    parser.add_argument("--eval-limit", type=int, default=300, help="test samples per split for the eval figure (0: all)")
    parser.add_argument("--judges", action="store_true",
                        help="also time CRNN, ASTER and MORAN (random weights, public sizes) reading DIR/test in one "
                             "evaluator pass (--eval-limit per split; 0: all)")
    parser.add_argument("--judges-only", action="store_true", help="time only the judges (implies --judges)")
    parser.add_argument("--out", default="eval/results/bench", help="folder for bench.md / bench.json")
    options.add_overrides(parser, "model.sr.blocks=2 (applied to every config)")


def run(args):
    import json
    from pathlib import Path

    import torch

    from tsr import dist
    from tsr.commands import options
    from tsr.config import load_config
    from tsr.errors import TsrError
    from tsr.io import atomic_write_text
    from tsr.engine import fast_path
    from tsr.perf import bench, bench_judges

    if args.batch_size < 1 or args.steps < 1:
        raise TsrError(f"--batch-size and --steps must be >= 1, got {args.batch_size} and {args.steps}")
    given, late = options.split_overrides(args.config or [])   # --config A.yaml k=v: k=v is an override
    args.overrides += late
    device = dist.init(args.device)
    fast_path.configure_backends(device)
    # a stage's init checkpoint is irrelevant to its speed
    stages = [] if args.judges_only else (given or ([] if args.int8 else DEFAULT_STAGES))
    configs = [(Path(c).stem, load_config(c, [*args.overrides, "train.init=null"])) for c in stages]
    figures = []
    if args.int8:
        from tsr import inference

        int8_model, int8_cfg = inference.load(args.int8)
        for figure in bench.bench_int8(int8_model, int8_cfg, repeats=args.steps):
            figures.append(figure)
            print(f"{figure.name}: fp32 {figure.eager:.1f} -> int8 {figure.fast:.1f} images/s", flush=True)
    for name, cfg in configs:
        figures.append(bench.bench_training(name, cfg, device, args.batch_size, args.steps))
        print(f"{figures[-1].name}: {figures[-1].eager:.1f} -> {figures[-1].fast:.1f} images/s", flush=True)
    if args.data and not args.judges_only and (stages or not args.int8):
        # evaluation of an image-level model (SR + its CRNN), the data settings of the same config
        eval_cfg = load_config(EVAL_CONFIG, [*args.overrides, "train.init=null"])
        figures.append(bench.bench_evaluation(eval_cfg, f"{args.data}/test", device, args.eval_limit))
        figures.append(bench.bench_loading(eval_cfg, f"{args.data}/train", device, args.batch_size, batches=50))
    table = bench.render(figures, device, fast_path.autocast_dtype("auto", device)) if figures else ""
    judges = []
    if (args.judges or args.judges_only) and args.data:
        judges = bench_judges.bench_judges(f"{args.data}/test", device, args.eval_limit)
        table = "\n\n".join(t for t in (table, bench_judges.render(judges, device)) if t)
    print(table)
    out = Path(args.out)
    atomic_write_text(out / "bench.md", table + "\n")
    atomic_write_text(out / "bench.json", json.dumps({"device": str(device), "batch": args.batch_size, "steps": args.steps,
                                                      "figures": [f.as_dict() for f in figures],
                                                      "judges": judges}, indent=2) + "\n")
    print(f"written: {out / 'bench.md'}, {out / 'bench.json'}")
    return 0
