"""`tsr profile`: parameters, FLOPs, activations and latency of every part of a config's model."""

HELP = "model complexity per part: parameters, FLOPs, activations (AIM 2020 conventions) and latency"


def add_arguments(parser):
    parser.add_argument("--config", help="config whose model is profiled (default: tsr's defaults: sr+head+recognizer)")
    parser.add_argument("--batch", type=int, default=1, help="images per timed forward (default 1)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=10, help="timed forwards per part")
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def run(args):
    from tsr import dist
    from tsr.config import load_config
    from tsr.errors import TsrError
    from tsr.images import image_channels
    from tsr.models.build import build_model
    from tsr.perf.complexity import measure, render

    if args.batch < 1 or args.repeats < 1:
        raise TsrError(f"--batch and --repeats must be >= 1, got {args.batch} and {args.repeats}")
    device = dist.init(args.device)
    cfg = load_config(args.config, args.overrides)
    data = cfg["data"]
    channels = image_channels(data["mask"])
    costs = measure(build_model(cfg), (channels, data["lr_height"], data["lr_width"]),
                    (channels, data["hr_height"], data["hr_width"]), batch=args.batch,
                    device=device, repeats=args.repeats)
    print(f"model of {args.config or 'defaults'}: LR {data['lr_height']}x{data['lr_width']} -> "
          f"HR {data['hr_height']}x{data['hr_width']}, {channels} channels")
    print(render(costs, args.batch, device))
    return 0
