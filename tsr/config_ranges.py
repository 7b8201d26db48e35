"""The valid range of every numeric config key, beside the schema (tsr/defaults.yaml gives keys, defaults and
types; this table gives what numbers make sense). `tsr.config.build_config` checks them once, after merging, so a
nonsense value is a one-line ConfigError before any work starts instead of a run that trains with rc 0 or a raw
ValueError deep inside torch.

A rule is `> a`, `>= a`, `< b`, `<= b` or `in [a, b)` (brackets: inclusive / exclusive); `each ...` applies it to
every item of a list or every value of a mapping. A null value passes (keys whose default is null are optional).
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

RANGES = {
    # numpy's seed range: the trainer seeds numpy with seed % 2**32, so a larger seed would repeat a smaller one's
    # numpy stream; far larger ones overflow torch's 64-bit seeds in the run (the loader's is seed * 1_000_003 + ...)
    "run.seed": "in [0, 4294967296)",
    "data.max_len": ">= 1",
    "data.hr_height": ">= 1",
    "data.hr_width": ">= 1",
    "data.lr_height": ">= 1",
    "data.lr_width": ">= 1",
    "data.num_workers": ">= 0",
    "model.sr.blocks": ">= 1",
    "model.sr.channels": ">= 1",
    "model.head.stages": ">= 1",
    "model.recognizer.hidden": ">= 1",
    "model.recognizer.cnn_channels": "each >= 1",
    "model.adapter.hidden": ">= 1",
    "eval.batch_size": ">= 1",
    "train.task_weights": "each >= 0",
    "train.sr_loss_weights": "each >= 0",
    "train.distill_temperature": "> 0",   # the distill task divides the logits by it
    "train.init_min_loaded": "in [0, 1]",
    "train.steps": ">= 1",
    "train.batch_size": ">= 1",
    "train.accum_steps": ">= 1",
    "train.lr": "in (0, 1]",          # Adam moves each weight by about lr per step: above 1 only diverges
    "train.lr_scale": "each > 0",
    "train.betas": "each in [0, 1)",
    "train.weight_decay": ">= 0",
    "train.lr_milestones": "each >= 1",
    "train.warmup_steps": ">= 0",
    "train.clip_grad_norm": ">= 0",
    "train.val_every": ">= 0",
    "train.val_limit": ">= 1",
    "train.save_every": ">= 1",
    "train.log_every": ">= 1",
    "train.num_images": ">= 0",
}

_RULE = re.compile(r"^(?P<each>each )?(?:(?P<op>>=|<=|>|<) (?P<bound>\S+)|in (?P<lo>[\[(])(?P<a>[^,]+), (?P<b>[^\])]+)(?P<hi>[\])]))$")


def _test(rule: str) -> Callable[[float], bool]:
    match = _RULE.match(rule)
    if match is None:
        raise ValueError(f"config range rule {rule!r} is not of the form '> a', '>= a', 'in [a, b)', 'each ...'")
    if match["op"]:
        bound, op = float(match["bound"]), match["op"]
        return {">": lambda x: x > bound, ">=": lambda x: x >= bound,
                "<": lambda x: x < bound, "<=": lambda x: x <= bound}[op]
    a, b = float(match["a"]), float(match["b"])
    low = (lambda x: x >= a) if match["lo"] == "[" else (lambda x: x > a)
    high = (lambda x: x <= b) if match["hi"] == "]" else (lambda x: x < b)
    return lambda x: low(x) and high(x)


def range_problem(dotted: str, value: Any) -> str | None:
    """Why `value` is outside the range of `dotted` (a sentence naming both), or None when it is fine."""
    rule = RANGES.get(dotted)
    if rule is None or value is None:
        return None
    test = _test(rule)
    if rule.startswith("each "):
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
        if items is None:
            return f"config key '{dotted}' must be a list or mapping of numbers ({rule}), got {value!r}"
        bad = [f"{k}: {v!r}" if isinstance(value, dict) else repr(v) for k, v in items if not _fits(v, test)]
        return (f"config key '{dotted}' must hold numbers that are each {rule[5:]}, got {value!r} "
                f"(bad: {', '.join(bad)})") if bad else None
    return None if _fits(value, test) else f"config key '{dotted}' must be {rule}, got {value!r}"


def _fits(value: Any, test: Callable[[float], bool]) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not math.isnan(value) and test(value)
