"""`tsr profile`: parameters, FLOPs, activations and latency of every part of a config's model."""

HELP = "model complexity per part: parameters, FLOPs, activations (AIM 2020 conventions) and latency"


def add_arguments(parser):
    from tsr.commands import options

    parser.add_argument("--config", help="config whose model is profiled (default: tsr's defaults: sr+head+recognizer)")
    options.add_batch_size(parser, 1, "images per timed forward")
    options.add_device(parser)
    parser.add_argument("--repeats", type=int, default=10, help="timed forwards per part")
    options.add_overrides(parser, "model.sr.blocks=2")


def run(args):
    from tsr import dist
    from tsr.config import load_config
    from tsr.errors import TsrError
    from tsr.images import hr_shape, image_channels, lr_shape
    from tsr.models.build import build_model
    from tsr.perf.complexity import measure, render

    if args.batch_size < 1 or args.repeats < 1:
        raise TsrError(f"--batch-size and --repeats must be >= 1, got {args.batch_size} and {args.repeats}")
    device = dist.init(args.device)
    cfg = load_config(args.config, args.overrides)
    data = cfg["data"]
    channels = image_channels(data["mask"])
    costs = measure(build_model(cfg), lr_shape(data), hr_shape(data), batch=args.batch_size,
                    device=device, repeats=args.repeats)
    print(f"model of {args.config or 'defaults'}: LR {data['lr_height']}x{data['lr_width']} -> "
          f"HR {data['hr_height']}x{data['hr_width']}, {channels} channels")
    print(render(costs, args.batch_size, device))
    return 0
