import yaml

from tsr.config import ConfigError, load_config

HELP = "print the resolved config (defaults <- CONFIG and its _base_ chain <- key=value overrides)"


def add_arguments(parser):
    parser.add_argument("--config", help="YAML config file (default: tsr's defaults)")
    parser.add_argument("--get", metavar="KEY",
                        help="print only this dotted key's value (YAML; a string as it is), e.g. train.steps: what "
                             "the launch scripts read of a resolved config")
    from tsr.commands import options

    options.add_overrides(parser, "train.lr=1e-4")


def run(args):
    cfg = load_config(args.config, args.overrides)
    if args.get is None:
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    value, path = cfg, []
    for part in args.get.split("."):
        if not isinstance(value, dict):
            raise ConfigError(f"--get {args.get}: '{'.'.join(path)}' is a value, not a section")
        if part not in value:
            raise ConfigError(f"--get {args.get}: no key '{part}' under '{'.'.join(path) or 'the config'}' "
                              f"(keys there: {', '.join(value)})")
        value, path = value[part], path + [part]
    # a string as it is (a path for the shell); anything else as YAML in one line (250, [0.5, 0.999], null)
    if not isinstance(value, str):
        value = yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()
    print(value)
    return 0
