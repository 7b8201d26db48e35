import yaml

from tsr.config import load_config

HELP = "print the resolved config (defaults <- CONFIG and its _base_ chain <- key=value overrides)"


def add_arguments(parser):
    parser.add_argument("--config", help="YAML config file (default: tsr's defaults)")
    from tsr.commands import options

    options.add_overrides(parser, "train.lr=1e-4")


def run(args):
    print(yaml.safe_dump(load_config(args.config, args.overrides), sort_keys=False), end="")
    return 0
