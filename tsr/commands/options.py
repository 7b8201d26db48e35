"""Flags several commands share, spelled and explained once: --device, --batch-size, key=value overrides."""
from __future__ import annotations

import argparse
import os

from tsr.config import is_override

DEVICES = ["auto", "cpu", "cuda"]


def add_device(parser, default: str = "auto") -> None:
    """--device auto|cpu|cuda; every command resolves it with tsr.dist.init (the one place that decides)."""
    parser.add_argument("--device", default=default, choices=DEVICES,
                        help="auto: cuda:LOCAL_RANK when CUDA is available, else cpu")


def add_batch_size(parser, default: int | None, what: str = "images per batch") -> None:
    # --batch is the old spelling of bench / profile, kept as an alias so scripts keep working
    parser.add_argument("--batch-size", "--batch", dest="batch_size", type=positive_int, default=default, help=what)


def add_overwrite(parser, what: str) -> None:
    """--overwrite: without it, a command that writes files of its own naming into a folder the user gives refuses
    one that already holds a file of such a name (tsr.outputs.check_replaced)."""
    parser.add_argument("--overwrite", action="store_true", help=what)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag in its error)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (e.g. --workers 0: load in the main process)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
    return value


def add_overrides(parser, example: str = "train.steps=2000 data.max_len=20") -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help=f"config overrides, e.g. {example}; a list key takes one value "
                             f"as a one-element list. Quote values with brackets for zsh: 'data.train_roots=[a,b]'")


def split_overrides(values: list[str]) -> tuple[list[str], list[str]]:
    """Tokens a list-taking flag (--ckpt A B ...) swallowed -> (its own values, key=value overrides among them).

    The grammar: a token `dotted.key=value` is an override wherever it stands (argparse gives everything after
    `--ckpt` to --ckpt), unless a file of that name exists (a path may contain '=')."""
    own = [v for v in values if not is_override(v) or os.path.exists(v)]
    return own, [v for v in values if v not in own]
